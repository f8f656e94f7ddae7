"""Prometheus metrics of one app, on a registry of its own.

A per-app registry rather than prometheus_client's global one: tests build many apps in one
process, and a global registry would refuse the second app's metrics (or mix their counts).
Requests are labelled by route template (`/v1/orders/{id}`), never the raw path, so that the
number of series stays bounded whatever ids clients send.
"""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

from api.access import requires
from api.keys import METRICS

UNMATCHED_ROUTE = "unmatched"


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "tributary_api_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tributary_api_request_duration_seconds",
            "Time to answer an HTTP request, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.events_produced = Counter(
            "tributary_api_events_produced",
            "Events acknowledged by Kafka, by topic.",
            ["topic"],
            registry=self.registry,
        )
        self.receipts_rejected = Counter(
            "tributary_api_receipts_rejected",
            "Provider receipts ignored rather than applied, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "tributary_api_webhook_duplicates",
            "Webhook deliveries answered as duplicates (nothing produced), by family.",
            ["family"],
            registry=self.registry,
        )

        self.unconfirmed_sends = Counter(
            "tributary_api_unconfirmed_sends",
            "Webhooks answered 503 while their record was still with the Kafka client, by what "
            "its outcome did to the ledger claim (recorded, released, given_up: api.settlement).",
            ["outcome"],
            registry=self.registry,
        )

    def count_settled(self, outcome: str) -> None:
        self.unconfirmed_sends.labels(outcome).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def route_label(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return UNMATCHED_ROUTE if resource is None else resource.canonical


def metrics_middleware(metrics: ApiMetrics) -> Middleware:
    """Outermost middleware, so it counts the status the client actually receives."""

    @web.middleware
    async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
        started_s = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            route = route_label(request)
            labels = (route, request.method, str(status))
            metrics.requests.labels(*labels).inc()
            metrics.latency.labels(*labels).observe(time.perf_counter() - started_s)

    return measure


@requires("operator")
async def serve_metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
