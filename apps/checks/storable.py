"""Text that any database column accepts.

Pings carry whatever a job printed: NUL bytes, invalid UTF-8, lone surrogates (from a client
that smuggled them through `surrogateescape`). PostgreSQL's text and jsonb refuse NUL (and
psycopg cannot encode a lone surrogate), and a refused write inside the sweep would stop the
check from being judged. Raw bytes stay raw in binary columns (Ping.body); every piece of text
derived from them, or taken from a header, goes through `storable_text` at the edge.
"""

import re

REPLACEMENT = "\ufffd"
# NUL, and lone surrogates: the only code points a Python str may hold that PostgreSQL's
# UTF-8 text cannot.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(value: str, max_length: int | None = None) -> str:
    """`value` with NUL and lone surrogates replaced by U+FFFD, cut to `max_length`."""
    if max_length is not None:
        value = value[:max_length]
    return _UNSTORABLE.sub(REPLACEMENT, value)


def decode_storable(data: bytes) -> str:
    """Bytes as storable text: invalid UTF-8 and NUL both become U+FFFD."""
    return storable_text(data.decode("utf-8", errors="replace"))
