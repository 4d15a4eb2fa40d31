"""gunicorn settings shared by `./dev run` and the Docker image; override with GUNICORN_CMD_ARGS."""

import os
import signal

from ml.runtime import give_large_allocations_back, usable_cores

# One process per core: Paddle runs each prediction on one math thread (ml.predictor), and
# threads let a worker keep serving pages while another request waits on the database.
workers = int(os.environ.get("WEB_CONCURRENCY", usable_cores()))
threads = 4
worker_class = "gthread"
timeout = 60
accesslog = "-"


def post_worker_init(worker):
    """Leave stopping a worker to the master: Ctrl-C signals the whole process group, and the master
    then sends each worker a quit of its own. A second quit arriving inside the first one's handler
    deadlocks a gthread worker on its thread pool's lock until graceful_timeout, then the master
    SIGKILLs it ("Perhaps out of memory?"). The master turns INT into QUIT, which workers still obey.

    And give the memory of large uploads back once they are read (ml.runtime), and load the active model
    before serving (classifier.inference.warm_up). The loading thread serves no request: its database
    connection is closed, not left open for the process's life."""
    from django.db import connections

    from classifier import inference

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    give_large_allocations_back()
    inference.warm_up()
    connections.close_all()
