#!/bin/sh
# The image's roles: `web` (default), `worker` (background tasks), `all` (both, for one container),
# `healthcheck`, or any other command (e.g. `python manage.py createsuperuser`).
set -eu

prepare() {
    # Retrained versions are written to the volume; the shipped model is copied beside them once.
    mkdir -p "$EMOTIONSITE_MODEL_DIR" "$EMOTIONSITE_MEDIA_DIR"
    for shipped in /app/models/*/; do
        target="$EMOTIONSITE_MODEL_DIR/$(basename "$shipped")"
        [ -e "$target" ] || cp -r "$shipped" "$target"
    done
    python manage.py migrate --noinput
    python manage.py register_models
}

case "${1:-web}" in
web)
    prepare
    exec gunicorn emotionsite.wsgi --config gunicorn.conf.py --bind 0.0.0.0:8000
    ;;
worker)
    prepare
    exec python manage.py db_worker
    ;;
all)
    prepare
    python manage.py db_worker &
    exec gunicorn emotionsite.wsgi --config gunicorn.conf.py --bind 0.0.0.0:8000
    ;;
healthcheck)
    # Only a web container answers HTTP; a worker is healthy while its process runs.
    pgrep -f db_worker >/dev/null && ! pgrep -f gunicorn >/dev/null && exit 0
    exec python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=5).status != 200)"
    ;;
*)
    exec "$@"
    ;;
esac
