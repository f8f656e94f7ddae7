"""One structured line per answered request: method, path, status, duration and request id.

aiohttp writes its access log after the handler (and `api.request_ids`' log context) has
ended, so the id is taken from the answer's `X-Request-Id` header rather than the context.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from api.request_ids import HEADER


class StructuredAccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        fields = {
            "request_id": response.headers.get(HEADER),
            "method": request.method,
            "path": request.path,
            "status": response.status,
            "duration_ms": round(time * 1000, 3),
            "remote": request.remote,
        }
        self.logger.info(
            "%s %s %d in %.1f ms",
            request.method,
            request.path,
            response.status,
            time * 1000,
            extra=fields,
        )
