"""WSGI entry point: `gunicorn emotionsite.wsgi`."""

import os
import socket
import time

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from classifier.images import MULTIPART_ALLOWANCE

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emotionsite.settings")

# Reading the rest of a refused body stops after this long, as gunicorn's own reading of it does: a client
# that announces a body and stops sending it must not hold a thread.
UNREAD_BODY_SECONDS = 5.0
_CHUNK = 2**16


class ReadTheRestOfARefusedBody:
    """Under gunicorn, read to its end the body of a request answered without reading it, before the answer.

    The site refuses some requests before reading their body (a wrong token, an upload announced over its
    limit). gunicorn 27 reads at most 64 KB of such a body after the answer, then closes the connection,
    though the answer said "Connection: keep-alive" (it ignores an application's "Connection: close"): a
    client that reuses the connection (requests' Session, httpx) loses its next request. Behind the image's
    nginx this never happens, as nginx opens a connection a request; gunicorn alone (`./dev run`, the
    image's `app` role) needs this. Read: at most a photo upload with its form, within UNREAD_BODY_SECONDS;
    a larger or slower body is left to gunicorn, as before (taking in a refused video only to throw it away
    would cost more than the client's reconnection)."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        connection = environ.get("gunicorn.socket")
        if connection is None or not 0 < length <= settings.EMOTIONSITE_MAX_UPLOAD_BYTES + MULTIPART_ALLOWANCE:
            return self.application(environ, start_response)
        body = _CountedInput(environ["wsgi.input"])
        environ["wsgi.input"] = body

        def start_response_after_the_body(status, headers, exc_info=None):
            if body.bytes_read < length:
                _read_the_rest(body, length, connection)
            return start_response(status, headers, exc_info)

        return self.application(environ, start_response_after_the_body)


def _read_the_rest(body: "_CountedInput", length: int, connection: socket.socket) -> None:
    deadline = time.monotonic() + UNREAD_BODY_SECONDS
    timeout = connection.gettimeout()
    try:
        while body.bytes_read < length and (left := deadline - time.monotonic()) > 0:
            connection.settimeout(left)
            if not body.read(min(_CHUNK, length - body.bytes_read)):
                break
    except OSError:
        pass  # too slow, or gone: gunicorn closes the connection, as it would have
    finally:
        connection.settimeout(timeout)


class _CountedInput:
    """A request body stream that counts the bytes read from it."""

    def __init__(self, stream):
        self._stream = stream
        self.bytes_read = 0

    def _counted(self, data: bytes) -> bytes:
        self.bytes_read += len(data)
        return data

    def read(self, size: int = -1) -> bytes:
        return self._counted(self._stream.read(size))

    def readline(self, size: int = -1) -> bytes:
        return self._counted(self._stream.readline(size))

    def readlines(self, hint: int = -1) -> list[bytes]:
        return [self._counted(line) for line in self._stream.readlines(hint)]

    def __iter__(self):
        return (self._counted(line) for line in self._stream)


application = ReadTheRestOfARefusedBody(get_wsgi_application())
