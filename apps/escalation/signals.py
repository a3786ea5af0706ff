"""What the escalation layer announces to the layers above it (notifications), which subscribe
in their AppConfig.ready(). Escalation decides who must be told what, and when; it never imports
the code that tells them: this module is the whole contract.

`notifications_owed` is sent inside the transaction that fired the escalation step, so the
outbox rows its receiver writes commit or roll back with the incident's escalation state.
"""

from dataclasses import dataclass
from datetime import datetime

from django.dispatch import Signal


@dataclass(frozen=True)
class Recipient:
    """One target: a team member (reached through their own contact methods: their email
    address today) or one of the team's channels. Exactly one of the two is set."""

    user_id: int | None = None
    channel_id: int | None = None

    def __post_init__(self):
        if (self.user_id is None) == (self.channel_id is None):
            raise ValueError("a Recipient is a user or a channel, exactly one of the two")

    @property
    def target(self) -> str:
        return f"user:{self.user_id}" if self.user_id is not None else f"channel:{self.channel_id}"


@dataclass(frozen=True)
class Owed:
    """A notification owed about `incident`: its `event` ("down", "escalation", "reminder",
    "retriggered", "unsilenced") to `recipients`, at `round` and `step` of its escalation
    (together unique per target, so a retried sweep never owes it twice)."""

    incident: object  # apps.incidents.models.Incident
    event: str
    recipients: tuple[Recipient, ...]
    round: int
    step: int


# Sent with owed=list[Owed] and now=datetime. A receiver writes the outbox rows.
notifications_owed = Signal()

# Sent with team_id=int and ids=set[int] | None (None: all of them); each receiver returns
# {channel_id: name} for the team's channels it knows, ordered by name. Escalation steps name
# channels by id only; this is how forms offer them and timelines name them.
channel_directory = Signal()


def owe(owed: list[Owed], *, now: datetime) -> None:
    if owed:
        notifications_owed.send(sender=Owed, owed=owed, now=now)


def team_channels(team_id: int, ids=None) -> dict[int, str]:
    """{channel_id: name} of the team's channels (only `ids` when given), ordered by name."""
    names: dict[int, str] = {}
    for _receiver, found in channel_directory.send(sender=Recipient, team_id=team_id, ids=ids):
        names.update(found or {})
    return names
