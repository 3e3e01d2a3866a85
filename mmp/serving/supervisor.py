"""`python -m mmp.serving.supervisor HOST PORT GRACE_S`: BentoML's supervisor (arbiter) for mmp's
service, as `bentoml serve mmp.serving.service:MmpService --host HOST --port PORT
--timeout-graceful-shutdown GRACE_S` starts it, without importing BentoML's command line first (its
command tree and cloud client: ~0.05 s of CPU and 3 MiB of every start).

The supervisor binds the port, starts the workers (each imports mmp.serving.service) and restarts
one that dies; `mmp serve-api` replaces itself with this process, so it receives the signals.
"""

from __future__ import annotations

import sys

SERVICE = "mmp.serving.service:MmpService"


def run(host: str, port: int, grace_period_s: int) -> None:
    """What `bentoml serve SERVICE` does for a BentoML >= 1.2 service: load it, then serve it over HTTP."""
    from _bentoml_impl.server import serve_http
    from bentoml._internal.log import configure_server_logging
    from bentoml._internal.service.loader import load

    configure_server_logging()
    if sys.path[0] != ".":  # `bentoml serve` serves from the working directory
        sys.path.insert(0, ".")
    load(bento_identifier=SERVICE, working_dir=".").inject_config()
    serve_http(SERVICE, working_dir=".", host=host, port=port, timeout_graceful_shutdown=grace_period_s)


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
