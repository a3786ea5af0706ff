"""Outbound HTTP for channels: every request has a timeout, and refuses private, loopback,
link-local and other non-public addresses (so a webhook URL cannot be used to reach internal
services) unless a setting allows them.

The host is resolved once, every address it resolves to is checked, and the connection goes to
the checked address (with the original Host header and TLS server name), so a DNS answer that
changes between the check and the connection (DNS rebinding) cannot slip through.
"""

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "Tocsin-Notifier/1"


class OutboundError(Exception):
    """A request that failed. `permanent` errors (a refused address, a 4xx) are not retried."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        status: int | None = None,
        retry_after: str | None = None,
    ):
        super().__init__(message)
        self.permanent = permanent
        self.status = status  # the receiver's HTTP status, when it answered
        # The answer's Retry-After header as sent (seconds or an HTTP date), when it had one:
        # a provider that throttles (429) or is down for a while (503) says when to come back.
        self.retry_after = retry_after


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes


# IPv6 ranges that no public host uses: IPv4-compatible addresses (deprecated by RFC 4291;
# :: and ::1 are handled as unspecified and loopback first) and local-use NAT64 (RFC 8215),
# which by definition translates into someone's private network.
_NEVER_PUBLIC_V6 = (ipaddress.ip_network("::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# Translators that carry the IPv4 destination in the last 32 bits: well-known NAT64
# (RFC 6052) and SIIT's IPv4-translated form (RFC 2765).
_LAST_32_BITS_V4 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("::ffff:0:0:0/96"))


def embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address leads to: a 6to4 (2002::/16) or Teredo (2001::/32,
    server and client) address is delivered through a relay to the IPv4 host inside it, a NAT64
    one is translated to it. Python's `is_global` judges only the outer address (it calls
    2002:7f00:1:: global), so these are what must be judged instead. Empty for other forms."""
    if address.sixtofour is not None:
        return (address.sixtofour,)
    if address.teredo is not None:
        return address.teredo
    if any(address in network for network in _LAST_32_BITS_V4):
        return (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF),)
    return ()


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True when `address`, and every IPv4 address embedded in it, is a public host."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if any(address in network for network in _NEVER_PUBLIC_V6):
            return False
        embedded = embedded_ipv4(address)
        if embedded:
            # The outer prefix says nothing (Teredo's is "private" to Python, NAT64's
            # "reserved"): the destination is the embedded host.
            return all(is_public(inner) for inner in embedded)
    return address.is_global and not (
        address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def address_allowed(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # ::ffff:a.b.c.d is the IPv4 host itself on a dual-stack socket.
        address = address.ipv4_mapped
    if address.is_loopback:
        return settings.OUTBOUND_ALLOW_LOOPBACK or settings.OUTBOUND_ALLOW_PRIVATE
    return is_public(address) or settings.OUTBOUND_ALLOW_PRIVATE


def resolve_public(host: str, port: int) -> str:
    """The first address of `host` that may be contacted; raises a permanent OutboundError if
    any address it resolves to is refused (a name that mixes public and private addresses is
    refused whole)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise OutboundError(f"cannot resolve {host}: {exc}") from None
    addresses = [info[4][0] for info in infos]
    refused = [ip for ip in addresses if not address_allowed(ip)]
    if refused or not addresses:
        shown = refused[0] if refused else "no address"
        raise OutboundError(
            f"refused: {host} resolves to a private or reserved address ({shown})", permanent=True
        )
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host, ip, **kwargs):
        super().__init__(host, **kwargs)
        self._ip = ip

    def connect(self):
        self.sock = socket.create_connection((self._ip, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, ip, **kwargs):
        super().__init__(host, context=ssl.create_default_context(), **kwargs)
        self._ip = ip

    def connect(self):
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class _Deadline:
    """Shuts the connection's socket down once `seconds` have passed, unless cancelled."""

    def __init__(self, connection: http.client.HTTPConnection, seconds: float):
        self.connection = connection
        self.expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        self.expired = True
        sock = self.connection.sock
        if sock is not None:
            # Already closed by the request finishing at the same moment: nothing to cut.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class ConnectionPool:
    """Keep-alive connections for many requests, shared by the threads of one delivery run.

    Idle connections are kept per (scheme, host, port, vetted address). Every request resolves
    and checks its host first (resolve_public), then takes an idle connection to the address
    that check returned, or opens one to it: a reused connection is always to an address that
    passed the guard for this very request, and a connection never resolves a name itself.
    Redirects are not followed (a 3xx is an answer like any other non-2xx). Thread-safe."""

    def __init__(self, *, max_idle_per_host: int = 32):
        self.max_idle_per_host = max_idle_per_host
        self._idle: dict[tuple, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self.opened = 0  # connections opened, for tests and the bench (reuse shows as fewer)

    def __enter__(self) -> "ConnectionPool":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    def _take(self, key: tuple) -> http.client.HTTPConnection | None:
        with self._lock:
            connections = self._idle.get(key)
            return connections.pop() if connections else None

    def _give_back(self, key: tuple, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            connections = self._idle.setdefault(key, [])
            if len(connections) < self.max_idle_per_host:
                connections.append(connection)
                return
        connection.close()

    def _open(self, scheme: str, host: str, ip: str, port: int, timeout: float):
        connection_class = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
        with self._lock:
            self.opened += 1
        return connection_class(host, ip, port=port, timeout=timeout)

    def post(self, url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> Response:
        """POST `body` to `url`. Raises OutboundError on refusal, network failure or a non-2xx
        answer (4xx except 408/429 are permanent; 5xx, 408 and 429 may be retried)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OutboundError("only http:// and https:// URLs can be used", permanent=True)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        ip = resolve_public(parts.hostname, port)
        key = (parts.scheme, parts.hostname, port, ip)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        all_headers = {"User-Agent": USER_AGENT, "Content-Length": str(len(body)), **headers}
        connection = self._take(key)
        if connection is not None:
            try:
                return self._exchange(key, connection, path, body, all_headers, timeout)
            except _StaleConnection:
                # The receiver closed the idle connection before our request reached it (its
                # keep-alive ran out): once more on a new connection. Should it have read the
                # request after all, it gets the message twice, with the same delivery id.
                pass
        connection = self._open(parts.scheme, parts.hostname, ip, port, timeout)
        try:
            return self._exchange(key, connection, path, body, all_headers, timeout)
        except _StaleConnection as exc:
            raise OutboundError(f"{type(exc.__cause__).__name__}: {exc.__cause__}") from None

    def _exchange(self, key, connection, path, body, headers, timeout) -> Response:
        is_reused = connection.sock is not None
        connection.timeout = timeout
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        # The socket timeout bounds each network operation; a receiver that drips a byte at a
        # time would pass every one of them. This deadline bounds the whole exchange: when it
        # passes, the socket is shut down under the blocked read.
        deadline = _Deadline(connection, timeout)
        is_reusable = False
        try:
            deadline.start()
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            content = response.read(MAX_RESPONSE_BYTES)
            # Reusable only when the answer was read to its end (a longer one is cut, and its
            # rest would be read as the next answer) and the receiver keeps the connection.
            is_reusable = response.isclosed() and not response.will_close
        except (OSError, http.client.HTTPException) as exc:
            if deadline.expired:
                raise OutboundError(f"timed out: no complete answer within {timeout:g} s") from None
            if is_reused and isinstance(exc, _STALE_ERRORS):
                raise _StaleConnection() from exc
            raise OutboundError(f"{type(exc).__name__}: {exc}") from None
        except (ValueError, UnicodeError) as exc:
            # http.client refuses header names or values with CR/LF or non-Latin-1 characters:
            # the request would be refused again, so it is not retried.
            raise OutboundError(f"invalid request: {exc}", permanent=True) from None
        finally:
            deadline.cancel()
            if not is_reusable or deadline.expired:
                connection.close()
        if deadline.expired:
            raise OutboundError(f"timed out: no complete answer within {timeout:g} s")
        if is_reusable:
            self._give_back(key, connection)
        if 200 <= response.status < 300:
            return Response(response.status, content)
        retryable = response.status >= 500 or response.status in (408, 429)
        retry_after = response.getheader("Retry-After")
        raise OutboundError(
            f"HTTP {response.status}: {content[:200].decode(errors='replace')}",
            permanent=not retryable,
            status=response.status,
            retry_after=retry_after[:100] if retry_after and retryable else None,
        )


class _StaleConnection(Exception):
    """A reused connection that the receiver had closed: nothing was answered on it."""


# What sending on a connection the other side closed while it sat idle raises.
_STALE_ERRORS = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


def post(url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> Response:
    """One POST on a connection of its own (see ConnectionPool.post)."""
    with ConnectionPool() as pool:
        return pool.post(url, body=body, headers=headers, timeout=timeout)
