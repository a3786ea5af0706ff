# The clock moved to apps/clock.py (below every app, so that teams may read it too). This alias
# keeps imports written before the move working; new code imports apps.clock.
from apps.clock import database_now, database_ok

__all__ = ["database_now", "database_ok"]
