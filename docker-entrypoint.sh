#!/bin/sh
# The image's roles:
#   web      (default) the site for one container: nginx on EMOTIONSITE_LISTEN in front of gunicorn
#   app      gunicorn alone on EMOTIONSITE_LISTEN, behind a buffering proxy of your own (compose.yaml's web)
#   proxy    nginx alone on EMOTIONSITE_LISTEN, in front of the gunicorn at EMOTIONSITE_UPSTREAM (compose.yaml)
#   worker   background tasks (retraining, videos)
#   all      web and worker in one container
#   prepare  migrate and register the models, then exit (compose.yaml runs it before the others)
#   healthcheck, or any other command (e.g. `python manage.py createsuperuser`).
# It runs outside Docker too, from a checkout, as the tests run it: it works in its own folder (/app in
# the image) and takes python, gunicorn and nginx from the PATH.
set -eu
cd "$(dirname "$0")"

# Where the site answers: host:port.
listen=${EMOTIONSITE_LISTEN:-0.0.0.0:8000}

prepare() {
    # Retrained versions are written to the volume; the shipped model is copied beside them once, under a
    # hidden name (registering skips those) and then renamed in one step: containers starting together on
    # one volume never see a half-copied folder, and the first rename wins.
    mkdir -p "$EMOTIONSITE_MODEL_DIR" "$EMOTIONSITE_MEDIA_DIR"
    for shipped in models/*/; do
        name=$(basename "$shipped")
        [ -e "$EMOTIONSITE_MODEL_DIR/$name" ] && continue
        partial=$(mktemp -d "$EMOTIONSITE_MODEL_DIR/.copying-$name.XXXXXX")
        chmod 755 "$partial"
        cp -r "$shipped." "$partial"
        mv -T "$partial" "$EMOTIONSITE_MODEL_DIR/$name" 2>/dev/null || rm -rf "$partial"
    done
    python manage.py migrate --noinput
    python manage.py register_models
}

# A folder for this container's sockets, nginx's configuration and its buffers. Readable by all: nginx
# started as root runs its workers as nobody.
run_folder() {
    folder=$(mktemp -d "${TMPDIR:-/tmp}/emotionsite.XXXXXX")
    chmod 755 "$folder"
    echo "$folder"
}

# nginx with deploy/nginx.conf in the foreground, answering on $listen in front of gunicorn at $2.
proxy() {
    sed -e "s|@RUN@|$1|g" -e "s|@LISTEN@|$listen|g" -e "s|@UPSTREAM@|$2|g" deploy/nginx.conf >"$1/nginx.conf"
    exec nginx -e stderr -c "$1/nginx.conf" -g "daemon off;"
}

# Slow clients must never reach gunicorn's threads (gunicorn.conf.py): nginx answers on $listen and hands
# gunicorn, on a Unix socket only it reaches, each request once it has it whole. If either stops, so does the
# other, and the container with it, so that its restart policy brings both back. Arguments: the ids of
# processes started before (the `all` role's worker), stopped and awaited with them in the same way.
serve_behind_proxy() {
    beside="$*"
    folder=$(run_folder)
    # gunicorn sees every client at nginx's address; nginx adds the client's own to X-Forwarded-For
    # (deploy/nginx.conf). The sign-in limits count that one (accounts.sign_in_limits): one proxy more than
    # those in front of the container, which EMOTIONSITE_PROXY_COUNT counts.
    EMOTIONSITE_PROXY_COUNT=$((${EMOTIONSITE_PROXY_COUNT:-0} + 1))
    export EMOTIONSITE_PROXY_COUNT
    gunicorn emotionsite.wsgi --config gunicorn.conf.py --bind "unix:$folder/gunicorn.sock" &
    app=$!
    (proxy "$folder" "unix:$folder/gunicorn.sock") &
    front=$!
    # $beside unquoted on purpose: one word per process id.
    trap 'kill -TERM "$app" "$front" $beside 2>/dev/null || true' INT TERM
    # POSIX sh has no `wait -n`: look once a second.
    while all_running "$app" "$front" $beside; do
        sleep 1
    done
    kill -TERM "$app" "$front" $beside 2>/dev/null || true
    status=0
    wait "$app" || status=$?
    wait "$front" || true
    for process in $beside; do
        wait "$process" || true
    done
    exit "$status"
}

all_running() {
    for process in "$@"; do
        kill -0 "$process" 2>/dev/null || return 1
    done
}

case "${1:-web}" in
prepare)
    # Migrations first, once, before several containers start on one database (compose.yaml): Django's
    # migrate is not made to run twice at once, while migrate with nothing to do and register_models are.
    prepare
    ;;
web)
    prepare
    serve_behind_proxy
    ;;
app)
    prepare
    exec gunicorn emotionsite.wsgi --config gunicorn.conf.py --bind "$listen"
    ;;
proxy)
    proxy "$(run_folder)" "${EMOTIONSITE_UPSTREAM:?set EMOTIONSITE_UPSTREAM to the web containers address, e.g. web:8000}"
    ;;
worker)
    prepare
    exec python manage.py db_worker
    ;;
all)
    prepare
    python manage.py db_worker &
    serve_behind_proxy "$!"
    ;;
healthcheck)
    # A worker is healthy while its process runs; web, app and proxy answer /healthz on $listen.
    pgrep -f db_worker >/dev/null && ! pgrep -f "gunicorn|nginx" >/dev/null && exit 0
    # Asked on the loopback under the first name the site answers to: a site deployed for its own name
    # alone refuses a Host of 127.0.0.1 (400), and compose.yaml's proxy waits for this check to pass.
    exec python - "${listen##*:}" <<'CHECK'
import os, sys, urllib.request
names = [name.strip().lstrip(".") for name in os.environ.get("ALLOWED_HOSTS", "").split(",")]
host = next((name for name in names if name not in ("", "*")), "localhost")
request = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/healthz", headers={"Host": host})
sys.exit(urllib.request.urlopen(request, timeout=5).status != 200)
CHECK
    ;;
*)
    exec "$@"
    ;;
esac
