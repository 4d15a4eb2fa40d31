"""gunicorn settings shared by `./dev run` and the Docker image; override with GUNICORN_CMD_ARGS."""

import os

# One process per core: Paddle runs each prediction on one math thread (ml.predictor), and
# threads let a worker keep serving pages while another request waits on the database.
workers = int(os.environ.get("WEB_CONCURRENCY", len(os.sched_getaffinity(0))))
threads = 4
worker_class = "gthread"
timeout = 60
accesslog = "-"
