"""`python -m mcp_server` (streamable HTTP on MCP_HOST:MCP_PORT/mcp) or `python -m mcp_server --stdio`.

On SIGTERM/SIGINT uvicorn shuts down gracefully and we then drain the call-log queue, so no call
row is lost on a normal stop.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys


def _exit_on_sigterm(signum, frame) -> None:  # noqa: ARG001
    # uvicorn restores this handler after its graceful shutdown and re-raises SIGTERM: turning it
    # into SystemExit lets the `finally` below drain the call log and exit 0 instead of dying.
    sys.exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m mcp_server", description="Anmei MCP sidecar")
    parser.add_argument("--stdio", action="store_true", help="serve MCP over stdin/stdout")
    parser.add_argument("--host", default=None, help="bind address (default: MCP_HOST)")
    parser.add_argument("--port", type=int, default=None, help="port (default: MCP_PORT)")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "anmei.settings")
    # Keep each ORM thread's connection between calls; close_old_connections recycles it.
    os.environ.setdefault("DB_CONN_MAX_AGE", os.environ.get("MCP_DB_CONN_MAX_AGE", "300"))
    import django

    django.setup()

    import anyio
    from django.conf import settings

    from mcp_server import db
    from mcp_server.calllog import writer
    from mcp_server.server import build_server

    server = build_server()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    writer.start()
    try:
        if args.stdio:
            anyio.run(server.run_stdio_async)
        else:
            import uvicorn

            host = args.host or settings.MCP_HOST
            port = args.port or settings.MCP_PORT
            from mcp.server.transport_security import TransportSecuritySettings

            # Host/Origin validation from settings whatever the bind address (0.0.0.0 in compose).
            security = TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=settings.MCP_ALLOWED_HOSTS,
                allowed_origins=settings.MCP_ALLOWED_ORIGINS,
            )
            app = server.streamable_http_app(
                streamable_http_path="/mcp",
                host=host,
                transport_security=security,
                json_response=settings.MCP_JSON_RESPONSE,
                stateless_http=settings.MCP_STATELESS_HTTP,
            )
            from mcp_server.gate import KeyGate

            config = uvicorn.Config(
                KeyGate(app, security=security),
                host=host,
                port=port,
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=5,
                lifespan="on",
            )
            uvicorn.Server(config).run()
    finally:
        writer.stop()
        db.shutdown()


if __name__ == "__main__":
    main()
