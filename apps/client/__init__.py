"""Tocsin's client for job hosts: the `tocsin` command (cli.py) and the `monitored` context
manager and decorator for Python jobs (monitor.py).

Standard library only, and no Django: it runs wherever the jobs run.
"""

from .monitor import monitored

__all__ = ["monitored"]
