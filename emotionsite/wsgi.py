"""WSGI entry point: `gunicorn emotionsite.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emotionsite.settings")

# A refused body of up to this many bytes is read to its end before the answer: a photo upload and its form.
UNREAD_BODY_READ_AT_MOST = 16 * 2**20
_CHUNK = 2**16


class ReadTheRestOfARefusedBody:
    """Read to its end the body of a request answered without reading it, before the answer goes out.

    The site refuses some requests before reading their body (a wrong token, an upload announced over its
    limit). gunicorn 27 reads at most 64 KB of such a body after the answer, then closes the connection,
    though the answer said "Connection: keep-alive" (it ignores an application's "Connection: close"): a
    client that reuses the connection (requests' Session, httpx) loses its next request. Behind the image's
    nginx this never happens, as nginx opens a connection a request; gunicorn alone (`./dev run`, the
    image's `app` role) needs this. A body over UNREAD_BODY_READ_AT_MOST is left to gunicorn, as before:
    taking in a refused video only to throw it away would cost more than the client's reconnection."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if not 0 < length <= UNREAD_BODY_READ_AT_MOST:
            return self.application(environ, start_response)
        body = _CountedInput(environ["wsgi.input"])
        environ["wsgi.input"] = body

        def start_response_after_the_body(status, headers, exc_info=None):
            while body.bytes_read < length and body.read(min(_CHUNK, length - body.bytes_read)):
                pass
            return start_response(status, headers, exc_info)

        return self.application(environ, start_response_after_the_body)


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
