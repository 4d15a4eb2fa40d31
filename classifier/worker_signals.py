"""How the worker's tasks stop when the worker is told to (SIGTERM from `docker stop`, systemd, a deploy)."""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class WorkerStopping(BaseException):
    """SIGTERM or SIGINT reached the worker while it ran a task. A BaseException, as KeyboardInterrupt is, so
    that no `except Exception` on the way takes it for the task's own failure."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopOnSignal:
    """While a task runs (in the worker's main thread: a retraining job, a video), SIGTERM or SIGINT stops
    it at once: WorkerStopping.

    Without it db_worker would let the task run to its end, which `docker stop` cuts short 10 s later with
    SIGKILL, leaving the task "running" until its stale rule. Paddle, once imported, sets its own SIGTERM
    handler over any before it (the process then just dies): import it, or load a model, before entering.
    Inside `held()` a signal waits for the block's end, so what the task keeps (a model version, a video's
    faces) is kept whole with its rows, or not at all. Leaving restores the handlers found on entry
    (db_worker's), and `pass_on` then hands them the signal: the worker exits as it was told.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.received: int | None = None
        self._holding = False
        self._previous: dict = {}

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._stop) for signum in self.SIGNALS}
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)

    def _stop(self, signum: int, frame) -> None:
        self.received = signum
        if not self._holding:
            raise WorkerStopping(signum)

    @contextmanager
    def held(self) -> Iterator[None]:
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        if self.received is not None:
            raise WorkerStopping(self.received)

    def pass_on(self) -> None:
        if self.received is not None:
            signal.raise_signal(self.received)
