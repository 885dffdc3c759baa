#!/bin/sh
# Groundwork container entrypoint: the first argument picks the role.
#   web        gunicorn with deploy/gunicorn.conf.py (PORT, WEB_CONCURRENCY, ...)
#   stream     the stream server: open inbox streams (python -m backend.streams, STREAM_PORT)
#   worker     RQ worker (python -m jobs.worker; extra arguments pass through)
#   scheduler  the periodic-job scheduler (run exactly one)
#   migrate    flask db upgrade, then exit (a one-off before web/worker roll out)
#   healthcheck  used by the image's HEALTHCHECK: /healthz for web and stream, else "alive"
# Anything else is run as a command (e.g. `flask --app wsgi shell`).
# Every role is exec'd so it becomes PID 1 and receives SIGTERM itself: gunicorn then
# drains in-flight requests and RQ finishes the current job (warm shutdown).
set -eu

# The repository root (/app in the image): wsgi.py, migrations/ and deploy/ live here.
cd "$(dirname "$0")/.."

role="${1:-web}"
[ "$#" -gt 0 ] && shift

# Remembered for the healthcheck, which runs as a separate process in the container.
record_role() { echo "$1" > /tmp/groundwork-role 2>/dev/null || true; }

case "$role" in
    web)
        record_role web
        export HOST="${HOST:-0.0.0.0}"
        exec gunicorn --config deploy/gunicorn.conf.py "$@" wsgi:app
        ;;
    stream)
        record_role stream
        export STREAM_HOST="${STREAM_HOST:-0.0.0.0}"
        exec python -m backend.streams "$@"
        ;;
    worker)
        record_role worker
        exec python -m jobs.worker "$@"
        ;;
    scheduler)
        record_role scheduler
        exec python -m jobs.scheduler "$@"
        ;;
    migrate)
        record_role migrate
        exec flask --app wsgi db upgrade "$@"
        ;;
    healthcheck)
        current="$(cat /tmp/groundwork-role 2>/dev/null || echo web)"
        if [ "$current" = web ] || [ "$current" = stream ]; then
            if [ "$current" = stream ]; then export PORT="${STREAM_PORT:-8001}"; fi
            exec python -c 'import os, sys, urllib.request
url = "http://127.0.0.1:%s/healthz" % os.environ.get("PORT", "8000")
with urllib.request.urlopen(url, timeout=3) as response:
    sys.exit(0 if response.status == 200 else 1)'
        fi
        # Workers and the scheduler have no HTTP port; Docker restarts them if PID 1
        # exits. Their liveness is the RQ heartbeat, visible in the console.
        exit 0
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
