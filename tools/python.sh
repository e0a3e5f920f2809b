# Sourced by the other scripts: sets PYTHON to an interpreter >= 3.12 (Django 6.1 needs it).
find_python() {
    local candidate
    for candidate in python3.13 python3.12 \
        "$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python3 \
        "$(pyenv root 2>/dev/null)"/versions/3.12*/bin/python3 \
        python3; do
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
            PYTHON="$(command -v "$candidate")"
            return 0
        fi
    done
    echo "djtasks needs Python >= 3.12 (Django 6.1 requires it); none found (tried python3.13, python3.12," >&2
    echo "pyenv's 3.13/3.12 and python3). Install one and try again." >&2
    return 1
}

# Create .venv with a suitable Python and install djtasks with the given extras.
ensure_venv() {
    local extras="$1"
    find_python || exit 1
    if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then
        rm -rf .venv
        "$PYTHON" -m venv .venv
    fi
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[${extras}]"
}
