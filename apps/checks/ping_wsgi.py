"""The ping fast path: a WSGI layer in front of Django that answers /ping/ itself.

Pings are most of Tocsin's traffic and need none of Django's middleware (sessions, CSRF, auth,
messages, templates). Skipping that stack is most of the CPU a ping costs, which is why the
benchmark in bench/ measures Tocsin against a bare WSGI reference. Everything else is passed to
Django unchanged.
"""

from django.conf import settings
from django.db import close_old_connections

from apps.teams.addresses import client_address

from .ping_endpoint import PREFIX, handle_ping, read_limited

_HEADERS = [
    ("Content-Type", "text/plain; charset=utf-8"),
    ("Cache-Control", "no-cache, no-store, must-revalidate, max-age=0"),
]


class PingFastPath:
    def __init__(self, django_app):
        self.django_app = django_app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX):
            return self.django_app(environ, start_response)
        return self.ping(environ, start_response, path)

    def ping(self, environ, start_response, path):
        method = environ.get("REQUEST_METHOD", "GET")
        body, truncated = b"", False
        if method == "POST":
            body, truncated = self.read_body(environ)
        try:
            result = handle_ping(
                method=method,
                path=path,
                query_string=environ.get("QUERY_STRING", ""),
                body=body,
                body_truncated=truncated,
                remote_addr=client_address(environ),
                user_agent=environ.get("HTTP_USER_AGENT", ""),
                sent_at_header=environ.get("HTTP_X_TOCSIN_SENT_AT", ""),
            )
        finally:
            # Django does this on request_finished; we bypass its handler, so do it here:
            # it drops connections past CONN_MAX_AGE or in an error state.
            close_old_connections()
        payload = b"" if method == "HEAD" else result.text.encode()
        headers = [*_HEADERS, ("Content-Length", str(len(payload)))]
        headers += result.headers(settings.PING_BODY_LIMIT)
        start_response(f"{result.status} {result.reason}", headers)
        return [payload]

    def read_body(self, environ) -> tuple[bytes, bool]:
        stream = environ["wsgi.input"]
        raw_length = environ.get("CONTENT_LENGTH") or ""
        if raw_length:
            try:
                length = int(raw_length)
            except ValueError:
                return b"", False
            return read_limited(stream, length, settings.PING_BODY_LIMIT)
        if environ.get("wsgi.input_terminated"):
            # Chunked upload through a server that ends the stream for us (gunicorn does).
            return read_limited(stream, None, settings.PING_BODY_LIMIT)
        return b"", False
