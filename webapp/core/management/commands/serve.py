"""Serve Errata under daphne in several processes that share one listening socket (HTTP and websockets).

Python runs one request at a time per process (the GIL); a second process lets a second core work. The
parent opens the socket and hands its file descriptor to each daphne (``--fd``); the kernel spreads the
connections. Several processes need channels-redis (REDIS_URL) for group messages between them.
daphne's access log (a line per request, written by the process that serves it) is off unless
``--access-log`` names a file or ``-`` (standard output): behind a reverse proxy, the proxy keeps it.
With ERRATA_BEHIND_PROXY on, daphne takes the client's address and scheme from the proxy's X-Forwarded-For
and X-Forwarded-Proto (``--proxy-headers``).
"""

import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


def daphne_argv(*, fd: int, access_log: str = "") -> list[str]:
    """One daphne process serving Errata on the inherited socket ``fd``."""
    argv = [sys.executable, "-m", "daphne", "--fd", str(fd), "--verbosity", "0"]
    argv += ["--access-log", access_log] if access_log else []
    argv += ["--proxy-headers"] if settings.ERRATA_BEHIND_PROXY else []
    return [*argv, "webapp.asgi:application"]


class Command(BaseCommand):
    help = "Serve Errata with --processes daphne processes on one port (default: WEB_PROCESSES or 1)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--processes", type=int, default=settings.ERRATA_WEB_PROCESSES)
        parser.add_argument("--access-log", default="", help="a file for daphne's access log, or - for stdout")

    def handle(self, *args, host, port, processes, access_log, **options):
        if processes < 1:
            raise CommandError("--processes: at least 1")
        if processes > 1 and "InMemory" in settings.CHANNEL_LAYERS["default"]["BACKEND"]:
            self.stderr.write("Several processes share no in-memory channel layer: set REDIS_URL for websocket groups.")
        listener = socket.create_server((host, port), backlog=2048)
        listener.set_inheritable(True)
        argv = daphne_argv(fd=listener.fileno(), access_log=access_log)
        children = [subprocess.Popen(argv, pass_fds=[listener.fileno()]) for _ in range(processes)]
        self.stdout.write(f"Serving on http://{host}:{port}/ with {processes} daphne process(es).")
        stopping = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.append(True))
        try:
            while not stopping and all(child.poll() is None for child in children):
                time.sleep(0.2)
        finally:
            for child in children:
                if child.poll() is None:
                    child.terminate()
            for child in children:
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
            listener.close()
        if not stopping:
            raise CommandError("a web process exited; stopped the others")
