"""What the incidents layer announces to the layers above it (escalation, notifications), which
subscribe in their AppConfig.ready(). Incidents never imports them: this module is the whole
contract.

Every signal is sent inside the transaction that changed the incidents, so whatever a receiver
writes (escalation state, timeline events, outbox rows) commits or rolls back with them.
Receivers must let exceptions through: the caller's transaction (or savepoint) is then undone
as a whole. Signals that carry `incidents` carry a list, so that a sweep announces a whole
batch at once.
"""

from django.dispatch import Signal

# incidents=list[Incident] just opened (their "opened" event is written), now=datetime.
incidents_opened = Signal()

# incidents=list[Incident] just resolved (by recovery, pause or by hand), now=datetime.
incidents_resolved = Signal()

# incident=Incident just acknowledged, by_user=the person (None for a chat channel's link),
# now=datetime.
incident_acknowledged = Signal()

# incidents=list[Incident] that a severity rule looked at and that now have the severity the
# rule raises to, now=datetime.
severities_raised = Signal()
