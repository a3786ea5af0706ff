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


# The longest a worker waits for a message before it looks at its stop flag again.
DRAIN_SLICE = 0.2


class Transport(filesystem.Transport):
    Channel = Channel

    def drain_events(self, connection, timeout=None):
        """Celery's loop for transports without a server (`synloop`) waits 2 s for a message
        before it checks whether it was asked to stop, so a Ctrl-C took 2 to 4 s to reach a
        worker of the embedded setup (issue 14: `dev.py run` must stop in 2 s). A bounded wait
        ends at most DRAIN_SLICE later; the loop then calls again, which costs one folder
        listing. A wait without a timeout stays unbounded, as its caller asked."""
        if timeout is not None:
            timeout = min(timeout, DRAIN_SLICE)
        return super().drain_events(connection, timeout=timeout)
