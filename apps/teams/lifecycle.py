"""The seam through which upper layers hear that a team came to life. The teams layer cannot
import them (teams is the bottom layer), so it announces and they subscribe: escalation gives
every new team a default policy (apps/escalation/defaults.py).

Sent by services.create_team inside its transaction, with `team`. Teams made any other way
(fixtures, factories, raw ORM) are not announced."""

from django.dispatch import Signal

team_created = Signal()
