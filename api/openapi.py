"""The API's OpenAPI 3.1 document, served at `/openapi.json`.

Written here rather than generated from the handlers (aiohttp has no schema of its own); the
bodies reuse the pydantic models the handlers validate with, so they cannot drift, and
`tests/unit/api/test_openapi.py` fails when a route of the app is missing from the document, or
the document names one the app does not have, or a route's declared scope differs from its
security. `tests/integration/api/test_openapi_fuzz.py` fuzzes the live API against it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel

from api.families import FAMILIES
from api.providers import PROVIDERS
from schemas.notifications import Channel, NotificationState
from schemas.orders import OrderHistoryEntry, OrderStatus, OrderView
from schemas.preferences import PreferencesPatch
from schemas.provider_receipts import ProviderReceiptsBody
from schemas.sessions import DeviceView, RevokeSessions, SessionView
from schemas.templates import NewTemplateVersion, TemplatePreview, TemplateVersion
from streams.api_keys import SCOPES
from streams.providers.webhooks import FORMATS
from streams.stores.delivery_store import DeliveryRow

PATH = "/openapi.json"
PROBLEM = "application/problem+json"
REGISTRY_JSON = "application/vnd.schemaregistry.v1+json"
REF = "#/components/schemas/{model}"

Json = dict[str, Any]


def _ref(name: str) -> Json:
    return {"$ref": REF.format(model=name)}


def _problem(description: str, headers: tuple[str, ...] = ()) -> Json:
    answer: Json = {"description": description, "content": {PROBLEM: {"schema": _ref("Problem")}}}
    if headers:
        answer["headers"] = {name: {"$ref": f"#/components/headers/{name}"} for name in headers}
    return answer


def _json(schema: Json, description: str) -> Json:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _param(name: str, where: str, schema: Json, required: bool = False) -> Json:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema}


_ID = {"type": "string", "minLength": 1}
_KEYED = {
    "401": _problem("No valid API key (none, unknown, revoked or malformed)"),
    "403": _problem("The key lacks the scope"),
    "429": _problem("Over the key's rate or daily quota", ("Retry-After",)),
    "503": _problem("PostgreSQL or Redis unavailable or too slow", ("Retry-After",)),
}
_SIGNED = {
    "400": _problem("The body is not JSON (or not the expected form)"),
    "401": _problem("The signature is missing or does not match"),
    "404": _problem("No such provider"),
    "409": _problem("The same webhook is being delivered right now", ("Retry-After",)),
    "413": _problem("The body is over the size limit"),
    "415": _problem("Not the expected media type"),
    "422": _problem("The body breaks its contract; every failing field is named"),
    "429": _problem("The family is over its ingest rate", ("Retry-After",)),
    "503": _problem("Kafka, Redis or the secret is unavailable", ("Retry-After",)),
}
_ACCEPTED = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"enum": ["accepted", "duplicate"]}, "event_id": {"type": "string"}},
}


def _keyed(scope: str, summary: str, ok: Json, *, parameters: list[Json], **more: Json) -> Json:
    return {
        "summary": summary,
        "security": [{"apiKey": [scope]}],
        "x-scope": scope,
        "parameters": parameters,
        "responses": {"200": ok, **_KEYED, **more},
    }


def _signed(summary: str, body: Json, parameters: list[Json] | None = None) -> Json:
    return {
        "summary": summary,
        "security": [{"standardWebhooks": []}],
        "x-scope": "signed-webhook",
        "parameters": parameters or [],
        "requestBody": {"required": True, "content": body},
        "responses": {
            "200": _json(_ACCEPTED, "A duplicate of a webhook already accepted"),
            "202": _json(_ACCEPTED, "On Kafka (acknowledged)"),
            **_SIGNED,
        },
    }


def _schemas() -> Json:
    models: dict[str, type[BaseModel]] = {
        "OrderView": OrderView,
        "OrderHistoryEntry": OrderHistoryEntry,
        "SessionView": SessionView,
        "DeviceView": DeviceView,
        "RevokeSessions": RevokeSessions,
        "Delivery": DeliveryRow,
        "ProviderReceipts": ProviderReceiptsBody,
        "PreferencesPatch": PreferencesPatch,
        "TemplateVersion": TemplateVersion,
        "NewTemplateVersion": NewTemplateVersion,
        "TemplatePreview": TemplatePreview,
    }
    models |= {f"{family.name.capitalize()}Webhook": family.body_model for family in FAMILIES}
    schemas: Json = {}
    for name, model in models.items():
        schema = model.model_json_schema(ref_template=REF, mode="serialization")
        schemas |= schema.pop("$defs", {})
        schemas[name] = schema
    schemas["Problem"] = {
        "type": "object",
        "required": ["type", "title", "status", "detail", "instance"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
        },
    }
    return schemas


def _reads() -> Json:
    channel = {"enum": sorted(Channel.__args__)}  # type: ignore[attr-defined]
    state = {"enum": sorted(NotificationState.__args__)}  # type: ignore[attr-defined]
    not_found = {"404": _problem("No such resource")}
    invalid = {"422": _problem("A query parameter is invalid; it is named")}
    return {
        "/v1/orders/{id}": {
            "get": _keyed(
                "orders:read",
                "An order's materialized view",
                _json(_ref("OrderView"), "The view"),
                parameters=[_param("id", "path", _ID)],
                **not_found,
            )
        },
        "/v1/notifications/{id}": {
            "get": _keyed(
                "notifications:read",
                "A notification's state and timeline",
                _json({"type": "object"}, "State and timeline"),
                parameters=[_param("id", "path", _ID)],
                **not_found,
            )
        },
        "/v1/users/{id}/notifications": {
            "get": _keyed(
                "notifications:read",
                "A user's notifications, newest first, keyset-paginated",
                _json(
                    {
                        "type": "object",
                        "required": ["items", "next_cursor"],
                        "properties": {
                            "items": {"type": "array", "items": _ref("Delivery")},
                            "next_cursor": {"type": ["string", "null"]},
                        },
                    },
                    "One page",
                ),
                parameters=[
                    _param("id", "path", _ID),
                    _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 500}),
                    _param("cursor", "query", {"type": "string"}),
                    _param("status", "query", state),
                    _param("channel", "query", channel),
                ],
                **invalid,
            )
        },
        "/v1/stats/delivery": {
            "get": _keyed(
                "stats:read",
                "Delivery rates (exact) and nearest-rank latency percentiles (within 5 %)"
                " over at most 31 days",
                _json({"type": "object", "required": ["groups"]}, "Per channel and category"),
                parameters=[
                    _param("from", "query", {"type": "string", "format": "date-time"}),
                    _param("to", "query", {"type": "string", "format": "date-time"}),
                    _param("channel", "query", channel),
                ],
                **invalid,
            )
        },
        "/v1/rate-limits/check": {
            "get": _keyed(
                "ratelimits:check",
                "Whether a user or address is blocked (200 either way)",
                _json(
                    {"type": "object", "required": ["allowed", "retry_after_s", "blocks"]},
                    "The answer",
                ),
                parameters=[
                    _param("user_id", "query", {"type": "string"}),
                    _param("ip", "query", {"type": "string"}),
                ],
                **{"400": _problem("user_id or ip missing or malformed")},
            )
        },
        "/v1/rate-limits/blocks/{kind}/{id}": {
            "delete": {
                **_keyed(
                    "operator",
                    "Lift a block",
                    {"description": "unused"},
                    parameters=[
                        _param("kind", "path", {"enum": ["user", "ip"]}),
                        _param("id", "path", _ID),
                    ],
                    **not_found,
                    **{"400": _problem("kind or id malformed")},
                ),
            }
        },
    }


def _order_reads() -> Json:
    time = {"type": "string", "format": "date-time"}
    invalid = {"422": _problem("A query parameter is invalid; it is named")}
    page = {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": _ref("OrderView")},
            "next_cursor": {"type": ["string", "null"]},
        },
    }
    history = {
        "type": "object",
        "required": ["order_id", "events"],
        "properties": {
            "order_id": {"type": "string"},
            "events": {"type": "array", "items": {"type": "object"}},
        },
    }
    return {
        "/v1/orders": {
            "get": _keyed(
                "orders:read",
                "Orders, newest first, filters combined, keyset-paginated",
                _json(page, "One page"),
                parameters=[
                    _param("user_id", "query", {"type": "string"}),
                    _param("status", "query", {"enum": sorted(OrderStatus.__args__)}),  # type: ignore[attr-defined]
                    _param("from", "query", time),
                    _param("to", "query", time),
                    _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 500}),
                    _param("cursor", "query", {"type": "string"}),
                ],
                **invalid,
            )
        },
        "/v1/orders/{id}/history": {
            "get": _keyed(
                "orders:read",
                "Every event applied to the order, in event time (OrderHistoryEntry each)",
                _json(history, "The audit trail"),
                parameters=[_param("id", "path", _ID)],
                **{"404": _problem("No such order")},
            )
        },
        "/v1/stats/orders": {
            "get": _keyed(
                "stats:read",
                "Order statistics per currency from closed windows, over at most 366 days",
                _json({"type": "object", "required": ["currencies"]}, "Per currency"),
                parameters=[
                    _param("from", "query", time),
                    _param("to", "query", time),
                    _param("currency", "query", {"type": "string"}),
                ],
                **invalid,
            )
        },
    }


def _sessions() -> Json:
    invalid = {"422": _problem("The user id, a parameter or a body field is invalid; it is named")}
    listing = {
        "type": "object",
        "required": ["user_id", "sessions", "devices"],
        "properties": {
            "user_id": {"type": "string"},
            "sessions": {"type": "array", "items": {"type": "object"}},
            "devices": {"type": "array", "items": {"type": "object"}},
        },
    }
    revoked = {
        "type": "object",
        "required": ["user_id", "revoked"],
        "properties": {
            "user_id": {"type": "string"},
            "revoked": {"type": "array", "items": {"type": "object"}},
        },
    }
    user = _param("id", "path", _ID)
    revoke = _keyed(
        "users:write",
        "Revoke sessions: auth.session-revoked events, answered once Kafka acknowledged them",
        _json(revoked, "unused"),
        parameters=[user, _param("Idempotency-Key", "header", {"type": "string"})],
        **invalid,
        **{
            "400": _problem("The body is not a JSON object"),
            "413": _problem("The body is over the size limit"),
            "415": _problem("Not JSON"),
            "503": _problem("Kafka, PostgreSQL or Redis unavailable", ("Retry-After",)),
        },
    )
    responses = revoke["responses"]
    responses["202"] = _json(revoked, "On auth.events (acknowledged)")
    del responses["200"]
    revoke["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": _ref("RevokeSessions")}},
    }
    return {
        "/v1/users/{id}/sessions": {
            "get": _keyed(
                "users:read",
                "A user's sessions (active, or all) newest first, and known devices",
                _json(listing, "Sessions and devices"),
                parameters=[user, _param("state", "query", {"enum": ["active", "all"]})],
                **invalid,
            )
        },
        "/v1/users/{id}/sessions/revoke": {"post": revoke},
    }


def _providers() -> Json:
    states = {"enum": ["closed", "open", "half-open"]}
    time = {"type": ["string", "null"], "format": "date-time"}
    text = {"type": ["string", "null"]}
    count = {"type": "integer", "minimum": 0}
    worker = {
        "type": "object",
        "required": ["worker", "state", "consecutive_failures", "reported_at", "current"],
        "properties": {
            "worker": {"type": "string"},
            "state": states,
            "consecutive_failures": count,
            "requests_in_window": count,
            "last_error": text,
            "opened_at": time,
            "times_opened": count,
            "reported_at": {"type": "string", "format": "date-time"},
            "current": {"type": "boolean"},
        },
    }
    provider = {
        "type": "object",
        "required": ["name", "state", "consecutive_failures", "requests_in_window", "workers"],
        "properties": {
            "name": {"enum": sorted(PROVIDERS)},
            "state": states,
            "consecutive_failures": count,
            "requests_in_window": count,
            "last_error": text,
            "last_error_at": time,
            "opened_at": time,
            "times_opened": count,
            "workers": {"type": "array", "items": worker},
        },
    }
    listing = {
        "type": "object",
        "required": ["status", "degraded", "providers"],
        "properties": {
            "status": {"enum": ["ok", "degraded"]},
            "degraded": {"type": "array", "items": {"type": "string"}},
            "providers": {"type": "array", "items": provider},
            "as_of": {"type": "string", "format": "date-time"},
        },
    }
    accepted = {
        "type": "object",
        "required": ["status", "provider", "command", "command_id", "topic", "offset"],
        "properties": {
            "status": {"enum": ["accepted"]},
            "provider": {"type": "string"},
            "command": {"enum": ["reset"]},
            "command_id": {"type": "string", "format": "uuid"},
            "topic": {"type": "string"},
            "partition": {"type": "integer"},
            "offset": {"type": "integer"},
        },
    }
    reset = _keyed(
        "operator",
        "Close a provider's circuit breaker in every worker: a reset command, answered once "
        "Kafka acknowledged it",
        _json(accepted, "unused"),
        parameters=[_param("name", "path", {"type": "string", "minLength": 1})],
        **{
            "404": _problem("No such provider; `field` names the path parameter"),
            "503": _problem("Kafka unavailable", ("Retry-After",)),
        },
    )
    responses = reset["responses"]
    responses["202"] = _json(accepted, "On notifications.provider-commands (acknowledged)")
    del responses["200"]
    return {
        "/v1/providers": {
            "get": _keyed(
                "operator",
                "Each provider's circuit breaker, over every worker; degraded while one is not "
                "closed",
                _json(listing, "The breakers"),
                parameters=[],
            )
        },
        "/v1/providers/{name}/reset": {"post": reset},
    }


def _suppressions() -> Json:
    channel = {"enum": sorted(Channel.__args__)}  # type: ignore[attr-defined]
    address = {"type": "string", "minLength": 1, "maxLength": 4096}
    item = {
        "type": "object",
        "required": ["channel", "address", "user_id", "kind", "suppressed_at", "status_reason"],
        "properties": {
            "channel": channel,
            "address": {"type": "string"},
            "user_id": {"type": "string"},
            "kind": {"enum": ["bounced", "complained"]},
            "reason": {"type": ["string", "null"]},
            "notification_id": {"type": ["string", "null"]},
            "suppressed_at": {"type": "string", "format": "date-time"},
            "soft_bounces": {"type": "integer"},
            "status_reason": {"type": "string"},
        },
    }
    page = {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": item},
            "next_cursor": {"type": ["string", "null"]},
        },
    }
    lift = _keyed(
        "operator",
        "Lift an address's suppression: suppression.lifted events, answered once Kafka "
        "acknowledged them (the worker applies them when it reads them)",
        {"description": "unused"},
        parameters=[
            _param("channel", "path", channel),
            _param("address", "path", address),
            _param("Idempotency-Key", "header", {"type": "string"}),
        ],
        **{
            "404": _problem("No suppression of that address"),
            "422": _problem("channel or address is invalid; it is named"),
            "503": _problem("Kafka or PostgreSQL unavailable", ("Retry-After",)),
        },
    )
    responses = lift["responses"]
    responses["204"] = {"description": "Lifted (on notifications.suppressions, acknowledged)"}
    del responses["200"]
    return {
        "/v1/suppressions": {
            "get": _keyed(
                "operator",
                "Suppressed addresses (bounced, complained), newest first, keyset-paginated",
                _json(page, "One page"),
                parameters=[
                    _param("channel", "query", channel),
                    _param("address", "query", address),
                    _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 500}),
                    _param("cursor", "query", {"type": "string"}),
                ],
                **{"422": _problem("A query parameter is invalid; it is named")},
            )
        },
        "/v1/suppressions/{channel}/{address}": {"delete": lift},
    }


_BODY_ERRORS = {
    "400": _problem("The body is not a JSON object"),
    "413": _problem("The body is over the size limit"),
    "415": _problem("Not JSON"),
}


def _with_body(operation: Json, schema: Json, status: str, answer: Json) -> Json:
    """`operation` taking a JSON body of `schema`, answering `status` instead of 200."""
    content = {"application/json": {"schema": schema}}
    operation["requestBody"] = {"required": True, "content": content}
    del operation["responses"]["200"]
    operation["responses"][status] = answer
    return operation


def _preferences() -> Json:
    user = _param("id", "path", _ID)
    invalid = {"422": _problem("The user id or a body field is invalid; it is named")}
    kafka = {"503": _problem("Kafka, PostgreSQL or Redis unavailable", ("Retry-After",))}
    produced = _json(
        {
            "type": "object",
            "required": ["user_id", "event_id", "topic", "partition", "offset", "preferences"],
        },
        "user.preferences-updated on users.events (acknowledged); wait for this event_id",
    )
    patch = _keyed(
        "users:write",
        "Change some preferences (JSON merge patch): a user.preferences-updated event",
        {"description": "unused"},
        parameters=[user, _param("If-Match", "header", {"type": "string"})],
        **invalid,
        **_BODY_ERRORS,
        **kafka,
        **{"412": _problem("If-Match names another state than the view's")},
    )
    reset = _keyed(
        "users:write",
        "Reset the preferences to the defaults: a user.preferences-updated event",
        {"description": "unused"},
        parameters=[user],
        **invalid,
        **kafka,
    )
    del reset["responses"]["200"]
    reset["responses"]["202"] = produced
    return {
        "/v1/users/{id}/preferences": {
            "get": _keyed(
                "users:read",
                "The effective preferences (switches on, off or null: default), quiet hours, "
                "time zone and locale; event_id is the last change applied",
                _json({"type": "object", "required": ["user_id", "categories"]}, "The view"),
                parameters=[user],
                **invalid,
                **{"404": _problem("Nothing known of the user (yet)")},
            ),
            "patch": _with_body(patch, _ref("PreferencesPatch"), "202", produced),
        },
        "/v1/users/{id}/preferences/reset": {"post": reset},
    }


def _templates() -> Json:
    name = _param("name", "path", {"type": "string"})
    version = _param("version", "path", {"type": "string"})
    missing = {"404": _problem("No such template or version")}
    invalid = {"422": _problem("A path parameter or body field is invalid; it is named")}
    kafka = {"503": _problem("Kafka unavailable", ("Retry-After",))}
    renders = {
        "422": _problem(
            "A parameter or field is invalid, or the version does not render: the part "
            "(subject, body) and line are named"
        )
    }
    listing = {"type": "object", "required": ["items"]}
    one = {"type": "object", "required": ["name", "latest_version", "active", "versions"]}
    written = {"type": "object", "required": ["name", "version", "active", "written"]}

    def operator(summary: str, ok: Json, parameters: list[Json], **more: Json) -> Json:
        return _keyed("operator", summary, ok, parameters=parameters, **more)

    add = operator("A new, inactive version", {"description": "unused"}, [name], **invalid)
    add["responses"] |= _BODY_ERRORS | kafka
    preview = operator(
        "Render a version (the latest by default) with its sample",
        _json({"type": "object", "required": ["subject", "body"]}, "The message"),
        [name],
        **missing,
        **renders,
    )
    preview["responses"] |= _BODY_ERRORS | kafka
    preview["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": _ref("TemplatePreview")}},
    }

    def switch(summary: str) -> Json:
        operation = operator(
            summary, _json(written, "Written (acknowledged)"), [name, version], **missing
        )
        operation["responses"] |= renders | kafka
        return {"post": operation}

    return {
        "/v1/templates": {
            "get": operator(
                "Every template with its active versions",
                _json(listing, "The templates"),
                [],
                **kafka,
            )
        },
        "/v1/templates/{name}": {
            "get": operator(
                "A template: its active versions and every version",
                _json(one, "The template"),
                [name],
                **missing,
                **invalid,
                **kafka,
            )
        },
        "/v1/templates/{name}/versions": {
            "post": _with_body(
                add,
                _ref("NewTemplateVersion"),
                "201",
                _json(written, "Written (acknowledged), inactive"),
            )
        },
        "/v1/templates/{name}/preview": {"post": preview},
        "/v1/templates/{name}/versions/{version}/activate": switch(
            "Activate a version (it must render its sample); the one it replaces is deactivated"
        ),
        "/v1/templates/{name}/versions/{version}/deactivate": switch("Deactivate a version"),
    }


def _writes() -> Json:
    paths: Json = {}
    signature_headers = [
        _param("webhook-id", "header", {"type": "string"}, required=True),
        _param("webhook-timestamp", "header", {"type": "string"}, required=True),
    ]
    for family in FAMILIES:
        body = {"application/json": {"schema": _ref(f"{family.name.capitalize()}Webhook")}}
        paths[family.path] = {
            "post": _signed(f"A signed {family.name} webhook", body, signature_headers)
        }
    provider = _param("provider", "path", {"enum": sorted(FORMATS)})
    receipts = {
        "application/json": {"schema": {}},
        "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
    }
    paths["/v1/webhooks/providers/{provider}"] = {
        "post": _signed(
            "Signed delivery receipts: Standard Webhooks, or the provider's own signature",
            receipts,
            [provider],
        )
    }
    return paths


def _operations() -> Json:
    text = {"description": "Prometheus text", "content": {"text/plain": {"schema": {}}}}
    plain: Json = {
        "/health/live": {
            "get": {
                "summary": "Liveness",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "Alive")},
            }
        },
        "/health/ready": {
            "get": {
                "summary": "Readiness",
                "security": [],
                "responses": {
                    "200": _json({"type": "object"}, "Every service answers"),
                    "503": _problem("A service is down; checks name it"),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "x-scope": "operator",
                "security": [{"apiKey": ["operator"]}],
                "responses": {"200": text, **_KEYED},
            }
        },
        PATH: {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")},
            }
        },
    }
    return plain


def _registry() -> Json:
    """Confluent Schema Registry reads, served when no registry is configured."""
    content: Json = {REGISTRY_JSON: {"schema": {}}}
    json_any = {"description": "As a Schema Registry answers", "content": content}
    # A path the registry's routes do not match at all (a newline in a subject) is our own 404.
    not_ours = content | {PROBLEM: {"schema": _ref("Problem")}}
    missing = {"404": {"description": "Unknown subject, version or id", "content": not_ours}}
    base = "/schema-registry"

    def get(summary: str, *names: str) -> Json:
        parameters = [
            _param(
                name,
                "path",
                {"type": "string", "pattern": "^[0-9]+$"} if name == "id" else {"type": "string"},
            )
            for name in names
        ]
        return {
            "get": {
                "summary": summary,
                "security": [],
                "parameters": parameters,
                "responses": {"200": json_any, **missing},
            }
        }

    return {
        f"{base}/schemas/ids/{{id}}": get("A schema by id", "id"),
        f"{base}/subjects": get("Every subject"),
        f"{base}/subjects/{{subject}}/versions": get("A subject's versions", "subject"),
        f"{base}/subjects/{{subject}}/versions/{{version}}": get(
            "One version", "subject", "version"
        ),
        f"{base}/associations/resources/{{namespace}}/{{topic}}": get(
            "Associations (none)", "namespace", "topic"
        ),
    }


def document() -> Json:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tributary API", "version": "1"},
        "paths": _reads()
        | _order_reads()
        | _sessions()
        | _providers()
        | _suppressions()
        | _preferences()
        | _templates()
        | _writes()
        | _operations()
        | _registry(),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "trb_<key id>_<secret>; scopes: " + ", ".join(SCOPES),
                },
                "standardWebhooks": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "webhook-signature",
                    "description": "Standard Webhooks (or the provider's own signature header)",
                },
            },
            "headers": {
                "Retry-After": {"schema": {"type": "string"}},
            },
        },
    }


async def serve_document(request: web.Request) -> web.Response:
    return web.json_response(document())


def routes() -> list[web.RouteDef]:
    return [web.get(PATH, serve_document)]
