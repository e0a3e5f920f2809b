#!/usr/bin/env bash
# Set up and run the demo: SQLite, the sample tasks enqueued, a worker processing them,
# and the admin at http://127.0.0.1:8000/admin/ (user demo, password demo).
# With --burst the worker exits once every due task ran (no web server).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/python.sh
ensure_venv "dev"
PY=.venv/bin/python
$PY manage.py migrate --verbosity 0
$PY manage.py shell -c "
from django.contrib.auth.models import User
User.objects.filter(username='demo').exists() or User.objects.create_superuser('demo', 'demo@example.com', 'demo')"
$PY manage.py enqueue_samples
if [ "${1:-}" = "--burst" ]; then
    exec $PY manage.py runworker --burst --pool threads -c 4
fi
$PY manage.py runserver 127.0.0.1:8000 --noreload >/dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
echo "admin: http://127.0.0.1:8000/admin/ (demo/demo); enqueue more at http://127.0.0.1:8000/; Ctrl-C stops"
$PY manage.py runworker --pool threads -c 4
