"""One module per channel kind; each turns a Message into its wire format and sends it.

    send(message, *, delivery, channel, now) -> SendOutcome

raises DeliveryError (permanent or not) on failure. All HTTP goes through ../outbound.py."""

from dataclasses import dataclass


class DeliveryError(Exception):
    """A send that failed. `permanent` failures (a refused address, a 4xx, a 5xx SMTP answer)
    are not retried: the same message would be refused again."""

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
        self.status = status
        # The receiver's Retry-After header, raw (see grouping.retry_after_delay).
        self.retry_after = retry_after


@dataclass(frozen=True)
class SendOutcome:
    status: int | None = None  # the HTTP status of the receiver's answer, when there is one
