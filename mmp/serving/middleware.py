"""One ASGI middleware for every response of the service, BentoML's own routes included: the
X-Request-ID header, bearer-token auth, the body size limit, one structured access-log line, the
Prometheus request metrics, a JSON 500 for a bug that keeps the connection usable, and
`Connection: close` while the worker drains for shutdown."""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import time
import uuid
from typing import Any

access_log = logging.getLogger("mmp.access")
log = logging.getLogger("mmp.serve")

# Probes and scrapes stay open when auth is on.
OPEN_PATHS = frozenset({"/health", "/ready", "/livez", "/readyz", "/healthz", "/metrics"})
KNOWN_ROUTES = frozenset({"/predict", "/predict/batch", "/model/info", "/model/schema", "/model/drift", "/docs",
                          "/openapi.json"}) | OPEN_PATHS
V2_INFER = "/v2/models/{model_name}/infer"  # one metrics label whatever the name in the path
V2_PATH = re.compile(r"/v2/models/[^/]+/infer")


class RequestMiddleware:
    def __init__(self, app: Any, token_env: str | None = None, max_body_bytes: int = 10 * 1024 * 1024,
                 metrics: Any = None, drain: Any = None):
        self.app = app
        self.token = os.environ.get(token_env, "") if token_env else ""
        self.token_env = token_env
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.drain = drain  # a Drain: once it has started, no response keeps its connection open

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")[:200]
        request_id = given or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = {"code": 500}
        progress = {"started": False, "complete": False}

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                progress["started"] = True
                extra = [(b"x-request-id", request_id.encode("latin-1"))]
                if self.drain is not None and self.drain.started:
                    extra.append((b"connection", b"close"))
                message["headers"] = [*message.get("headers", []), *extra]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                progress["complete"] = True
            await send(message)

        path = scope.get("path", "")
        try:
            refusal = self._refusal(path, headers)
            if refusal is not None:
                await _send_json(send_with_id, *refusal)
            else:
                await self.app(scope, receive, send_with_id)
        except Exception:
            # A bug below. Reaching the server, it would reset the connection, and with it the client's
            # next request: answer it here instead, and keep the connection.
            log.exception("request %s failed", request_id)
            if progress["started"] and not progress["complete"]:
                raise  # half a response cannot be mended: the server closes the connection, as it must
            if not progress["started"]:
                await _send_json(send_with_id, 500, internal_error(request_id), [])
        finally:
            seconds = time.perf_counter() - started
            route = path if path in KNOWN_ROUTES else V2_INFER if V2_PATH.fullmatch(path) else "other"
            if self.metrics is not None:
                self.metrics.observe(route, scope.get("method", ""), status["code"], seconds)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(json.dumps({
                    "request_id": request_id, "method": scope.get("method"), "path": path, "status": status["code"],
                    "ms": round(seconds * 1000, 2), "client": (scope.get("client") or ["?"])[0],
                }))

    def _refusal(self, path: str, headers: dict) -> tuple[int, dict, list] | None:
        if self.token_env and path not in OPEN_PATHS and not self._authorized(headers.get(b"authorization", b"")):
            return 401, {"error": "unauthorized", "message": "send 'Authorization: Bearer <token>'"}, \
                [(b"www-authenticate", b"Bearer")]
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            return 413, {"error": "body_too_large",
                         "message": f"the body has {int(length)} bytes; the limit is {self.max_body_bytes}"}, []
        return None

    def _authorized(self, header: bytes) -> bool:
        """`Bearer <token>` with the right token; the scheme's case does not matter (RFC 9110 §11.1)."""
        scheme, _, credentials = header.strip().partition(b" ")
        # compare_digest's time does not depend on where the tokens differ: timing reveals no prefix
        return bool(self.token) and scheme.lower() == b"bearer" and \
            hmac.compare_digest(credentials.strip(), self.token.encode())


def internal_error(request_id: str) -> dict:
    """The body of a 500: no detail of the bug goes to the client, the id finds it in the log."""
    return {"error": "internal_error", "message": f"the service failed on this request (request id {request_id}); "
                                                  "the server log has the traceback"}


async def _send_json(send: Any, status: int, body: dict, extra_headers: list) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *extra_headers]})
    await send({"type": "http.response.body", "body": payload})


class RequestMetrics:
    """Requests by route, method and status, and a latency histogram, on BentoML's /metrics."""

    def __init__(self) -> None:
        import bentoml

        self.requests = bentoml.metrics.Counter(
            name="mmp_http_requests", documentation="HTTP requests by route, method and status",
            labelnames=["route", "method", "status"])
        self.latency = bentoml.metrics.Histogram(
            name="mmp_http_request_duration_seconds", documentation="HTTP request latency by route",
            labelnames=["route"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route=route, method=method, status=str(status)).inc()
        self.latency.labels(route=route).observe(seconds)
