import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.checks.email_pings import make_listener


class Command(BaseCommand):
    help = (
        "Run the SMTP listener for email pings: mail to <check uuid>@PING_EMAIL_DOMAIN or "
        "<ping key>+<slug>@PING_EMAIL_DOMAIN is a ping of that check. Runs until SIGTERM/SIGINT."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.PING_EMAIL_HOST)
        parser.add_argument("--port", type=int, default=settings.PING_EMAIL_PORT)

    def handle(self, *args, host, port, **options):
        domain = settings.PING_EMAIL_DOMAIN
        if not domain:
            raise CommandError("Set PING_EMAIL_DOMAIN (the domain of the ping addresses) first.")
        if not 0 < port < 65536:
            raise CommandError(f"--port must be 1 to 65535, got {port}.")
        listener = make_listener(host=host, port=port, domain=domain)
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        listener.start()
        self.stdout.write(f"Email pings: listening on {host}:{port} for *@{domain}", ending="\n")
        self.stdout.flush()
        try:
            while not stop.wait(1.0):
                pass
        finally:
            listener.stop()
