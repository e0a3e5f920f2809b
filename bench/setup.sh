#!/usr/bin/env bash
# Create (or refresh) the bench-only virtualenv bench/.venv.
#
# Idempotent: re-running it reuses the venv and only installs what is missing
# or out of date. djtasks itself is installed editable from the checkout.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(dirname "$BENCH_DIR")"
VENV="$BENCH_DIR/.venv"

find_python() {
    # Python >= 3.12 is required (Django 6.1); prefer an explicit override.
    local candidates=("${BENCH_PYTHON:-}" python3.13 python3.12)
    if command -v pyenv >/dev/null 2>&1; then
        candidates+=("$(pyenv root)/versions/3.13.0/bin/python3")
    fi
    candidates+=(python3)
    for py in "${candidates[@]}"; do
        [ -n "$py" ] || continue
        if "$py" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then
            echo "$py"
            return 0
        fi
    done
    echo "setup.sh: no Python >= 3.12 found (set BENCH_PYTHON)" >&2
    return 1
}

if [ ! -x "$VENV/bin/python" ]; then
    "$(find_python)" -m venv "$VENV"
fi

"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet --upgrade-strategy only-if-needed \
    "Django>=6.1,<6.2" \
    "django-tasks-db==0.13.*" \
    "celery[redis]>=5.4,<6" \
    "django-celery-results>=2.5" \
    "dramatiq[redis]>=1.17" \
    "huey>=2.5" \
    "gevent>=24.2" \
    "redis[hiredis]>=5.0" \
    "psycopg[binary]>=3.2" \
    "psutil>=5.9" \
    "rich>=13"
# djtasks itself, editable, from this checkout (with its Redis extra); done on
# every run so that new dependencies of djtasks are picked up. Skipped with a
# warning while the package is not there yet.
if [ -f "$ROOT_DIR/djtasks/__init__.py" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade-strategy only-if-needed -e "$ROOT_DIR[redis]"
else
    echo "setup.sh: $ROOT_DIR/djtasks/__init__.py not found yet; djtasks not installed" >&2
fi

"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
for name in ("Django", "django-tasks-db", "celery", "django-celery-results", "dramatiq", "huey", "gevent", "redis", "psycopg", "djtasks"):
    try:
        print(f"{name:24} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"{name:24} (missing)")
PY
