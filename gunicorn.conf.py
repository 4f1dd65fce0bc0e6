"""gunicorn settings read from the working directory (docker-compose `web`).

SIGTERM: the arbiter stops accepting and gives workers `graceful_timeout` seconds to finish
in-flight requests before killing them (compose's stop_grace_period is longer, so it never SIGKILLs
first). A worker that dies drops its live Prometheus gauges.
"""

import os

graceful_timeout = int(os.environ.get("WEB_SHUTDOWN_GRACE_SECONDS", "20"))


def child_exit(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    from anmei.common.metrics import mark_process_dead

    mark_process_dead(worker.pid)
