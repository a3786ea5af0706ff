"""A local webhook receiver for the end-to-end benchmark: records when each message arrives.

    python bench/receiver.py --port 8109 --log bench/var/receiver.jsonl

A threaded HTTP server (one thread per connection, so a slow delivery never queues behind
another) that answers every POST with 200 and appends one JSON line per request to the log:
the arrival time (time.time(), the same host clock the database stamps deadlines with), the
delivery id header and how many incidents the message carries. The line is flushed before the
answer goes out, so whoever reads the log sees a message no later than Tocsin sees its 200.
Standard library only; stopped with SIGTERM or SIGINT by whoever started it.
"""

import argparse
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 10 * 1024 * 1024  # a grouped message of thousands of incidents stays far below this


class Recorder:
    def __init__(self, path: str):
        self.file = open(path, "a", buffering=1)  # noqa: SIM115 - closed at shutdown
        self.lock = threading.Lock()

    def write(self, record: dict) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self.lock:
            self.file.write(line)
            self.file.flush()


def make_handler(recorder: Recorder):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver behind a proxy would

        def do_POST(self):
            arrived = time.time()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, MAX_BODY)) if length > 0 else b""
            try:
                count = int(json.loads(body).get("count", 0))
            except (ValueError, AttributeError):
                count = -1  # not Tocsin's webhook payload: recorded, and counted as unknown
            recorder.write(
                {
                    "t": arrived,
                    "path": self.path,
                    "delivery": self.headers.get("X-Tocsin-Delivery", ""),
                    "count": count,
                    "bytes": len(body),
                }
            )
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "3")
            self.end_headers()
            self.wfile.write(b"OK\n")

        def log_message(self, format, *args):
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    recorder = Recorder(args.log)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(recorder))
    server.daemon_threads = True
    server.request_queue_size = 256  # a burst of deliveries must not meet connection resets

    def stop(signum, frame):
        # shutdown() waits for serve_forever's loop, which runs in the main thread: from a
        # signal handler it would deadlock, so it runs in a thread of its own.
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"receiver listening on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    recorder.file.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
