"""A request refused before its body was read, on a kept-alive connection, against gunicorn alone as
`docker-entrypoint.sh app` and `./dev run` serve the site: the client's next request must still be answered.

gunicorn 27 closes such a connection after the answer while the answer says "Connection: keep-alive"; a
client that reuses it (requests' Session, httpx) then loses its next request (emotionsite.wsgi)."""

import http.client
import os
import socket
import time
from pathlib import Path

from tests.site_processes import free_port, image_environment, start_entrypoint, stop, wait_until_healthy

UNREAD_BODY = 120_000  # more than gunicorn reads ahead with the headers


def start_app_role(tmp_path: Path) -> tuple:
    port = free_port()
    server = start_entrypoint("app", environment=image_environment(tmp_path, port), log=tmp_path / "server.log")
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}/healthz", server)
    except BaseException:
        stop(server)
        raise
    return server, port


def test_after_an_upload_refused_unread_the_next_request_on_the_connection_is_answered(tmp_path: Path):
    server, port = start_app_role(tmp_path)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        boundary = "refused"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="me.jpg"\r\n'
                "Content-Type: image/jpeg\r\n\r\n"
            ).encode()
            + os.urandom(UNREAD_BODY)
            + f"\r\n--{boundary}--\r\n".encode()
        )
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Authorization": "Token wrong"}

        connection.request("POST", "/api/v1/captures/", body, headers)
        refused = connection.getresponse()
        refused.read()
        assert refused.status == 401 and refused.getheader("Connection") == "keep-alive"
        connection.request("GET", "/healthz")
        assert connection.getresponse().status == 200
    finally:
        stop(server)


def test_a_refused_request_whose_body_stops_coming_is_still_answered(tmp_path: Path):
    server, port = start_app_role(tmp_path)
    try:
        client = socket.create_connection(("127.0.0.1", port), timeout=30)
        client.sendall(
            b"POST /api/v1/captures/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token wrong\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Length: 120000\r\n\r\n" + b"x" * 1000
        )  # and then nothing more
        started = time.monotonic()
        answer = client.recv(4096)
        assert answer.startswith(b"HTTP/1.1 401") and time.monotonic() - started < 15
        client.close()
    finally:
        stop(server)
