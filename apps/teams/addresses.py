"""The address of the client behind a request, for the account rate limits and for the address
a ping records.

Behind the bundled nginx (deploy/nginx.conf) every request comes from the proxy, which SETS
X-Forwarded-For to the address it saw, so a client cannot forge it. Another proxy may append
that address to what the client sent instead: either way the LAST entry is the proxy's word.
It is trusted only when TRUST_PROXY_FORWARDED_FOR (or BEHIND_TLS_PROXY, as before) says a
proxy stands in front; without a proxy the header is whatever the client wrote.
"""

import ipaddress
from collections.abc import Mapping

from django.conf import settings


def client_address(meta: Mapping[str, str]) -> str:
    """The client's address from `meta` (a request's META or a WSGI environ). A last entry
    that is not an IP address (a misconfigured or bypassed proxy) falls back to REMOTE_ADDR."""
    remote_addr = meta.get("REMOTE_ADDR", "")
    if not (settings.TRUST_PROXY_FORWARDED_FOR or settings.SECURE_PROXY_SSL_HEADER):
        return remote_addr
    last = meta.get("HTTP_X_FORWARDED_FOR", "").rsplit(",", 1)[-1].strip()
    try:
        return str(ipaddress.ip_address(last))
    except ValueError:
        return remote_addr
