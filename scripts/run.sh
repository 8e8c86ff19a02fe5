#!/usr/bin/env bash
# Start Errata on the embedded defaults with the demo: migrate, load the demo, the CPU model server,
# a default-queue and a gpu-queue Celery worker, and daphne.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export DEBUG=${DEBUG:-1} ERRATA_DEMO=${ERRATA_DEMO:-1}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
MODEL_PORT=${MODEL_PORT:-8001}
export ERRATA_LOCAL_MODEL_URL=${ERRATA_LOCAL_MODEL_URL:-http://127.0.0.1:$MODEL_PORT/v1}

"$PY" manage.py migrate --noinput -v 0
"$PY" manage.py collectstatic --noinput -v 0
"$PY" manage.py load_demo ${ERRATA_DEMO_PASSWORD:+--password "$ERRATA_DEMO_PASSWORD"}

children=()
trap 'kill "${children[@]}" 2>/dev/null; wait 2>/dev/null' EXIT INT TERM

mkdir -p var/log
echo "Starting the CPU model server with SmolLM2 on port $MODEL_PORT (the first start converts the model, ~20 s)..."
"$PY" -m gpu_worker serve --smollm2 smollm2 --host 127.0.0.1 --port "$MODEL_PORT" > var/log/model-server.log 2>&1 &
children+=($!)
.venv/bin/celery -A webapp worker -Q default --concurrency 2 --loglevel WARNING > var/log/worker.log 2>&1 &
children+=($!)
.venv/bin/celery -A gpu_worker.celery_app worker -Q gpu --pool solo --loglevel WARNING > var/log/gpu-worker.log 2>&1 &
children+=($!)

echo
echo "Errata is starting on http://$HOST:$PORT/  (sign in with a demo user above; Ctrl-C stops)"
echo "Logs: var/log/ (model server, workers)."
"$PY" manage.py serve --host "$HOST" --port "$PORT" --access-log -  # WEB_PROCESSES=N for more (with REDIS_URL)
