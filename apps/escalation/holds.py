"""What holds an incident's notifications back: an open incident of a check it depends on,
or a silence or maintenance window covering the check. Lookups only; engine.py acts on them."""

from dataclasses import dataclass
from datetime import datetime

from apps.checks.models import Check
from apps.incidents.models import Incident

from .models import MaintenanceWindow, Silence, matchers_from_json
from .silencing import CheckFacts


def open_parent_incident(check: Check) -> Incident | None:
    """An open incident of a check that `check` depends on (the oldest), or None."""
    return (
        Incident.objects.select_related("owner")
        .filter(owner__in=check.depends_on.all())
        .exclude(state=Incident.State.RESOLVED)
        .order_by("opened_at", "id")
        .first()
    )


def check_facts(check: Check) -> CheckFacts:
    return CheckFacts(
        id=str(check.id), tags=frozenset(check.tag_list), environment=check.environment
    )


@dataclass(frozen=True)
class Cover:
    """What silences a check at a moment, and until when."""

    until: datetime
    silence: Silence | None = None
    window: MaintenanceWindow | None = None

    def describe(self) -> dict:
        if self.silence is not None:
            return {"silence": self.silence.id, "comment": self.silence.comment}
        return {"maintenance_window": self.window.id, "name": self.window.name}


def covering_silence(check: Check, now: datetime, *, silences=None, windows=None) -> Cover | None:
    """The silence or maintenance window covering `check` at `now` that lasts longest. Pass the
    team's active silences and windows when asking about many checks."""
    facts = check_facts(check)
    if silences is None:
        silences = Silence.objects.filter(team_id=check.team_id).active_at(now)
    if windows is None:
        windows = MaintenanceWindow.objects.filter(team_id=check.team_id)
    covers = [
        Cover(until=s.effective_end, silence=s) for s in silences if s.spec().covers(facts, now)
    ]
    for window in windows:
        spec = window.spec()
        if spec.matchers.matches(facts):
            opening = spec.window_at(now)
            if opening is not None:
                covers.append(Cover(until=opening[1], window=window))
    return max(covers, key=lambda c: c.until, default=None)


def matching_checks(team_id: int, matchers: dict):
    """The team's checks a silence with `matchers` would cover (the preview)."""
    spec = matchers_from_json(matchers)
    return [c for c in Check.objects.filter(team_id=team_id) if spec.matches(check_facts(c))]


def silenced_now(team_id: int, now: datetime) -> list[tuple[Check, Cover]]:
    """The team's checks covered by a silence or maintenance window at `now` (the dashboard's
    "silenced right now")."""
    silences = list(Silence.objects.filter(team_id=team_id).active_at(now))
    windows = list(MaintenanceWindow.objects.filter(team_id=team_id))
    found = []
    for check in Check.objects.filter(team_id=team_id).order_by("name"):
        cover = covering_silence(check, now, silences=silences, windows=windows)
        if cover is not None:
            found.append((check, cover))
    return found
