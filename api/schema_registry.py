"""`/schema-registry/...`: the project's schema set behind the Schema Registry REST paths.

Read-only, and only when no real registry is configured (then our ids are the ones on the wire),
so that stock Confluent clients pointed at `http://HOST:PORT/schema-registry` decode our topics.
Every answer, errors included, is the registry's own JSON with its content type rather than
problem+json: clients read the `error_code` (40401 no subject, 40403 no schema...) to decide
what to do. Query parameters (`subject`, `format`, `deleted`...) are ignored: with one schema
per id and no deletions, none of them changes an answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from api.keys import REGISTRY_VIEWS
from streams.kafka.schema_registry import RegistryLookupError, RegistryViews

PREFIX = "/schema-registry"
REGISTRY_JSON = "application/vnd.schemaregistry.v1+json"
# The codes Confluent's registry gives for a path or a method it does not serve.
NOT_FOUND = 404
METHOD_NOT_ALLOWED = 405

View = Callable[[RegistryViews, Mapping[str, str]], Any]


def registry_response(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status, content_type=REGISTRY_JSON)


def error_response(status: int, error_code: int, message: str) -> web.Response:
    return registry_response({"error_code": error_code, "message": message}, status)


def _served(view: View) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            answer = view(request.app[REGISTRY_VIEWS], request.match_info)
        except RegistryLookupError as exc:
            return registry_response(exc.body, exc.http_status)
        return registry_response(answer)

    return handler


async def _unknown_path(request: web.Request) -> web.StreamResponse:
    if request.method in ("GET", "HEAD"):
        return error_response(404, NOT_FOUND, "HTTP 404 Not Found")
    message = "this registry is read-only: schemas are released with the code, not registered"
    return error_response(405, METHOD_NOT_ALLOWED, message)


async def _not_served(request: web.Request) -> web.StreamResponse:
    message = "schemas are not served here: this deployment uses its own Schema Registry"
    return error_response(404, NOT_FOUND, message)


def _fallback(handler: Handler) -> web.RouteDef:
    # Registered after the served paths, so it only answers what none of them matched.
    return web.route("*", PREFIX + "/{tail:.*}", handler)


def routes(served: bool) -> list[web.RouteDef]:
    """The registry paths; with `served` False (a real registry in use) only the fallback."""
    if not served:
        return [_fallback(_not_served)]
    return [
        web.get(
            PREFIX + r"/schemas/ids/{id:\d+}",
            _served(lambda views, match: views.schema(int(match["id"]))),
        ),
        web.get(PREFIX + "/subjects", _served(lambda views, _match: views.subjects())),
        web.get(
            PREFIX + "/subjects/{subject}/versions",
            _served(lambda views, match: views.versions(match["subject"])),
        ),
        web.get(
            PREFIX + "/subjects/{subject}/versions/{version}",
            _served(lambda views, match: views.version(match["subject"], match["version"])),
        ),
        web.get(
            PREFIX + "/associations/resources/{namespace}/{topic}",
            _served(lambda views, _match: views.associations()),
        ),
        _fallback(_unknown_path),
    ]
