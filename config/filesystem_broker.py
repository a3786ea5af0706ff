"""kombu's filesystem transport (the embedded broker) with atomic message writes.

kombu creates each message file under its final name and only then writes into it. A worker
that lists the folder in between takes the empty file, fails to decode it and stops with
"Unrecoverable error: JSONDecodeError" (the worker process exits). Here a message is written
under a name the consumer skips (`<name>.msg.part`) and renamed into place once complete;
rename is atomic within a folder, so a consumer sees a whole message or none.
"""

import contextlib
import os
import uuid
from time import monotonic

from celery.worker import state as worker_state
from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        # The same name as kombu's (its consumer sorts on the leading milliseconds).
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = f"{final}.part"
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.remove(partial)
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


# How often a waiting worker looks at its stop flag.
DRAIN_SLICE = 0.2


def _worker_asked_to_stop() -> bool:
    """Ctrl-C or SIGTERM reached this process's Celery worker (its signal handler sets these)."""
    # Celery sets the exit code, 0 included; None or False means not asked.
    flags = (worker_state.should_stop, worker_state.should_terminate)
    return any(flag is not None and flag is not False for flag in flags)


class Transport(filesystem.Transport):
    Channel = Channel

    def drain_events(self, connection, timeout=None):
        """Wait for a message as kombu does, but give up early once the worker is asked to stop.

        Celery's loop for transports without a server (`synloop`) waits 2 s for a message
        before it checks whether it was asked to stop, so a Ctrl-C took 2 to 4 s to reach a
        worker of the embedded setup (issue 14: `dev.py run` must stop in 2 s). Here the wait
        is cut into DRAIN_SLICE pieces (one folder listing each) and ends after the piece in
        which a stop was asked; any other caller still waits its whole timeout."""
        if timeout is None:
            return super().drain_events(connection)
        deadline = monotonic() + timeout
        while True:
            piece = max(0.0, min(DRAIN_SLICE, deadline - monotonic()))
            try:
                return super().drain_events(connection, timeout=piece)
            except TimeoutError:
                if monotonic() >= deadline or _worker_asked_to_stop():
                    raise
