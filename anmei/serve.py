"""daphne with a graceful SIGTERM: stop accepting, finish in-flight requests within a deadline, exit.

    python -m anmei.serve -b 127.0.0.1 -p 8000 anmei.asgi:application   (daphne's own arguments)

Plain daphne on SIGTERM stops the reactor at once: in-flight HTTP requests are cancelled, and the
process then never exits under load, because a2wsgi's worker threads (anmei/asgi.py) block in
`WSGIResponder.send` on an event loop that no longer runs and the interpreter waits for them at exit
(R6 of issue 10). Here SIGTERM (or SIGINT) instead:

1. stops listening (new connections are refused; the orchestrator's other replicas take them);
2. closes WebSockets with 1001 "going away" (clients reconnect elsewhere);
3. waits for the in-flight HTTP requests, at most WEB_SHUTDOWN_GRACE_SECONDS (default 20);
4. stops the reactor and leaves with `os._exit`, so no blocked thread can hold the process.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time

import daphne.server  # noqa: I001 - first: it installs Twisted's asyncio reactor
from daphne.cli import CommandLineInterface
from daphne.http_protocol import WebRequest
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import reactor

logger = logging.getLogger("anmei.serve")

GOING_AWAY = 1001


class GracefulServer(daphne.server.Server):
    """daphne's Server with a graceful drain and without daphne's access log.

    Every HTTP request already gets one JSON line from `anmei.common.middleware.AccessLogMiddleware`;
    daphne's own (on by default at verbosity 1) doubled each line.
    """

    def __init__(self, *args, **kwargs):
        kwargs["action_logger"] = None
        super().__init__(*args, **kwargs)

    grace_seconds = float(os.environ.get("WEB_SHUTDOWN_GRACE_SECONDS", "20"))

    def run(self):
        self.ports = []
        self.draining_since: float | None = None
        self.signal_handlers = False  # ours below, not Twisted's immediate reactor.stop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: reactor.callFromThread(self.drain))
        super().run()

    def listen_success(self, port):
        self.ports.append(port)
        super().listen_success(port)

    def in_flight(self) -> int:
        """HTTP requests whose application has not finished (WebSockets are closed, not waited for)."""
        return sum(
            1
            for protocol, details in list(self.connections.items())
            if isinstance(protocol, WebRequest)
            and details.get("application_instance") is not None
            and not details["application_instance"].done()
        )

    def drain(self) -> None:
        if self.draining_since is not None:
            return
        self.draining_since = time.monotonic()
        for port in self.ports:
            port.stopListening()
        sockets = [p for p in list(self.connections) if isinstance(p, WebSocketProtocol)]
        for protocol in sockets:
            try:
                protocol.serverClose(code=GOING_AWAY)
            except Exception:  # noqa: BLE001 - a socket already gone needs no close
                pass
        logger.info(
            "web shutdown: draining",
            extra={"in_flight": self.in_flight(), "websockets": len(sockets), "grace_s": self.grace_seconds},
        )
        self._wait_then_stop()

    def _wait_then_stop(self) -> None:
        pending = self.in_flight()
        waited = time.monotonic() - self.draining_since
        if pending and waited < self.grace_seconds:
            reactor.callLater(0.05, self._wait_then_stop)
            return
        logger.info(
            "web shutdown: stopping",
            extra={"abandoned": pending, "duration_ms": round(waited * 1000, 1)},
        )
        self.stop()


class GracefulCommandLineInterface(CommandLineInterface):
    server_class = GracefulServer


def _forget_dead_gauges() -> None:
    """A restarted web process drops this host's live gauges (open WebSockets) left by its predecessor."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory and os.path.isdir(directory):
        host = socket.gethostname().replace("_", "-")
        for name in os.listdir(directory):
            if name.startswith("gauge_live") and f"_{host}-" in name:
                os.remove(os.path.join(directory, name))


def main(argv: list[str]) -> int:
    sys.path.insert(0, os.getcwd())
    _forget_dead_gauges()
    code = 1
    try:
        GracefulCommandLineInterface().run(argv)
        code = 0
    finally:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # a2wsgi threads stuck in send() must not keep the process alive


if __name__ == "__main__":
    main(sys.argv[1:])
