#!/usr/bin/env bash
# Set up and run the whole test suite: unit (SQLite), integration (PostgreSQL, MariaDB)
# and end-to-end (real runworker subprocesses, the admin in headless Chromium).
# Extra arguments go to pytest, e.g. `bash tools/test.sh tests/unit -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/python.sh
ensure_venv "dev"
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ]; then
    apt-get install -y --no-install-recommends chromium >/dev/null
fi
exec .venv/bin/python -m pytest -p no:cacheprovider "${@:-tests}"
