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

    def __init__(self, message: str, *, permanent: bool = False, status: int | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.status = status  # the receiver's HTTP status, when it answered


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


def post(url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> Response:
    """POST `body` to `url`. Raises OutboundError on refusal, network failure or a non-2xx
    answer (4xx except 408/429 are permanent; 5xx, 408 and 429 may be retried)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundError("only http:// and https:// URLs can be used", permanent=True)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    ip = resolve_public(parts.hostname, port)
    connection_class = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(parts.hostname, ip, port=port, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    all_headers = {"User-Agent": USER_AGENT, "Content-Length": str(len(body)), **headers}
    # The socket timeout bounds each network operation; a receiver that drips a byte at a time
    # would pass every one of them. This deadline bounds the whole exchange: when it passes,
    # the socket is shut down under the blocked read.
    deadline = _Deadline(connection, timeout)
    try:
        deadline.start()
        connection.request("POST", path, body=body, headers=all_headers)
        response = connection.getresponse()
        content = response.read(MAX_RESPONSE_BYTES)
    except (OSError, http.client.HTTPException) as exc:
        if deadline.expired:
            raise OutboundError(f"timed out: no complete answer within {timeout:g} s") from None
        raise OutboundError(f"{type(exc).__name__}: {exc}") from None
    except (ValueError, UnicodeError) as exc:
        # http.client refuses header names or values with CR/LF or non-Latin-1 characters:
        # the request would be refused again, so it is not retried.
        raise OutboundError(f"invalid request: {exc}", permanent=True) from None
    finally:
        deadline.cancel()
        connection.close()
    if deadline.expired:
        raise OutboundError(f"timed out: no complete answer within {timeout:g} s")
    if 200 <= response.status < 300:
        return Response(response.status, content)
    retryable = response.status >= 500 or response.status in (408, 429)
    raise OutboundError(
        f"HTTP {response.status}: {content[:200].decode(errors='replace')}",
        permanent=not retryable,
        status=response.status,
    )
