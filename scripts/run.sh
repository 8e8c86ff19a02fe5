#!/usr/bin/env bash
# Start Errata on the embedded defaults with the demo: migrate, load the demo, a Celery worker and daphne.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export DEBUG=${DEBUG:-1} ERRATA_DEMO=${ERRATA_DEMO:-1}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}

"$PY" manage.py migrate --noinput -v 0
"$PY" manage.py collectstatic --noinput -v 0
"$PY" manage.py load_demo ${ERRATA_DEMO_PASSWORD:+--password "$ERRATA_DEMO_PASSWORD"}

.venv/bin/celery -A webapp worker -Q default --concurrency 2 --loglevel WARNING &
WORKER=$!
trap 'kill $WORKER 2>/dev/null; wait $WORKER 2>/dev/null' EXIT INT TERM

echo
echo "Errata is starting on http://$HOST:$PORT/  (sign in with a demo user above; Ctrl-C stops)"
.venv/bin/daphne -b "$HOST" -p "$PORT" webapp.asgi:application
