"""`python manage.py db_worker`: django-tasks-db's worker, which also says it is alive, busy or idle.

django-tasks-db records which worker claimed a task, but nothing of a worker waiting for one, so /healthz could
not tell an idle worker from a dead one. This command runs the library's worker as it is, beside a thread that
writes a heartbeat (`services.worker_heartbeat`) every WORKER_HEARTBEAT_EVERY and removes it on the way out.
It takes the name because `classifier` comes before `django_tasks_db` in INSTALLED_APPS.
"""

import logging
import os
import threading

from django.db import DatabaseError, connection
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV
from django_tasks_db.management.commands import db_worker

from classifier import services
from classifier.models import WORKER_HEARTBEAT_EVERY

logger = logging.getLogger(__name__)


class Command(db_worker.Command):
    help = f"{db_worker.Command.help}, recording a heartbeat every {WORKER_HEARTBEAT_EVERY.seconds} s for /healthz"

    def handle(self, *args, **options) -> None:
        # With --reload this process only watches the code and restarts a child, which is the worker.
        if options["reload"] and not options["batch"] and os.environ.get(DJANGO_AUTORELOAD_ENV) != "true":
            return super().handle(*args, **options)
        heartbeat = _Heartbeat(options["worker_id"])
        heartbeat.start()
        try:
            return super().handle(*args, **options)
        finally:
            heartbeat.stop()


class _Heartbeat(threading.Thread):
    def __init__(self, worker_id: str):
        super().__init__(name=f"worker-{worker_id}-heartbeat", daemon=True)
        self.worker_id = worker_id
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while True:
                try:
                    services.worker_heartbeat(worker_id=self.worker_id)
                except DatabaseError:
                    # The database may be back by the next beat; /healthz says the worker is silent meanwhile.
                    logger.exception("Worker %s: the heartbeat could not be written", self.worker_id)
                if self.stopped.wait(WORKER_HEARTBEAT_EVERY.total_seconds()):
                    break
            services.worker_heartbeat_end(worker_id=self.worker_id)
        except DatabaseError:
            logger.exception("Worker %s: the heartbeat could not be removed", self.worker_id)
        finally:
            connection.close()  # this thread's own connection

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)
