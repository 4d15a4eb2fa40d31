"""Slow clients against the site as the Docker image serves it: `docker-entrypoint.sh web`, run from this checkout.

Measured with gunicorn alone in front (the image before nginx, and `docker-entrypoint.sh app`): 3 of 13 probes
of /healthz answered within 2 s while 16 clients sent a body a byte at a time; behind nginx, 13 of 13.
"""

import socket
import threading
import time
import urllib.request
from pathlib import Path

from tests.site_processes import start_image_web_role, stop

# gunicorn.conf.py gives each web process 4 threads; the test runs 2 processes (a 2-core machine's default),
# so 8 slow clients were enough to take every thread. Twice as many leave no doubt.
SLOW_CLIENTS = 16
PROBES = 5
PROBE_TIMEOUT_SECONDS = 2.0


def slow_login(port: int) -> socket.socket:
    """A client that sends its headers, then a form body of 1,000 bytes one byte at a time (`drip`)."""
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    client.sendall(
        b"POST /api/v1/auth/token/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nu"
    )
    return client


def drip(clients: list[socket.socket], stopped: threading.Event) -> None:
    while not stopped.wait(0.5):
        for client in clients:
            try:
                client.send(b"s")
            except OSError:
                pass  # a server may close a client that is too slow: that is its right


def healthz_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_SECONDS) as response:
            return response.status == 200
    except OSError:
        return False


def test_slow_clients_do_not_starve_the_site(tmp_path: Path):
    server, base = start_image_web_role(tmp_path, WEB_CONCURRENCY="2")
    port = int(base.rsplit(":", 1)[1])
    clients: list[socket.socket] = []
    stopped = threading.Event()
    try:
        clients.extend(slow_login(port) for _ in range(SLOW_CLIENTS))
        dripper = threading.Thread(target=drip, args=(clients, stopped), daemon=True)
        dripper.start()
        time.sleep(1)  # every slow client has its request under way
        answered = [healthz_answers(f"{base}/healthz") for _ in range(PROBES)]
    finally:
        stopped.set()
        for client in clients:
            client.close()
        stop(server)
    assert answered == [True] * PROBES, (tmp_path / "server.log").read_text(errors="replace")[-3000:]
