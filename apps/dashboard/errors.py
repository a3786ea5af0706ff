"""Error pages' plumbing: a 403 is an answer, not a fault, so its log line has no traceback."""

import logging

from django.core.exceptions import PermissionDenied


class PermissionDeniedWithoutTraceback(logging.Filter):
    """On django.request: a refused request (PermissionDenied, logged as a warning with the
    exception attached) keeps its one line, plus the reason, and loses the traceback, which
    says nothing about a refusal and buries real errors in the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc_info = record.exc_info
        if exc_info and isinstance(exc_info[1], PermissionDenied):
            reason = str(exc_info[1])
            record.exc_info = None
            record.exc_text = None
            if reason:
                record.msg = f"{record.msg} (%s)"
                record.args = (*(record.args or ()), reason)
        return True
