"""Notification templates, for operators: list, read, add versions, preview, (de)activate.

Reads come from the catalogue this process folds from the compacted topic
`notifications.templates` (`streams.templates.live`), read to its end before every answer: the
topic is small, and an operator who just added or activated a version sees it at once, with no
view to wait for. Writes are records on that topic, answered only once Kafka acknowledged them;
the router reads the topic to its end before each batch, so a notification routed after the
answer renders with what was written.

A version's number is the template's highest plus one, decided under a lock of this process;
two API processes adding a version of the same template in the same instant could pick the same
number (the later record wins the key): one operator per template at a time is assumed.

Activating renders the version's sample first, in the router's sandbox: a version that does not
render cannot be activated (422 naming the part and line). Activation writes the version with
`active` true and the version it replaces (same locale and channel) with `active` false.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from api.access import requires
from api.contracts import validate
from api.errors import NotFoundError, TemplateRejectedError
from api.keys import CATALOG, CODEC, PRODUCER, SETTINGS, TEMPLATES
from api.webhooks import read_body, require_json
from schemas.templates import (
    NewTemplateVersion,
    TemplateEvent,
    TemplateName,
    TemplatePreview,
    TemplateVersion,
)
from streams.errors import ContractViolationError, FieldError
from streams.kafka.event_producer import RecordPosition
from streams.providers.receipts import parse_json_object
from streams.templates.catalog import TemplateCatalog, render_version
from streams.templates.files import version_event
from streams.templates.sandbox import Sandbox, TemplateSourceError, number_locale

SOURCE = "tributary.api"
# Amounts in a preview are formatted as the version's locale writes them, else as English does.
NUMBERS_FALLBACK = "en"
_NAME: TypeAdapter[str] = TypeAdapter(TemplateName)
WRITE_LOCK = web.AppKey("templates_write_lock", asyncio.Lock)
SANDBOX = web.AppKey("templates_sandbox", Sandbox)


def name_of(request: web.Request) -> str:
    try:
        return _NAME.validate_python(request.match_info["name"])
    except ValidationError as exc:
        raise ContractViolationError("path", [FieldError("name", exc.errors()[0]["msg"])]) from None


def version_number_of(request: web.Request) -> int:
    raw = request.match_info["version"]
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 2**31 - 1:
        raise ContractViolationError(
            "path", [FieldError("version", "must be a version number, from 1")]
        )
    return int(raw)


async def current(request: web.Request) -> TemplateCatalog:
    """The catalogue as of now: every write Kafka acknowledged before this call is in it."""
    codec = await request.app[CODEC].codec()
    return await request.app[TEMPLATES].refresh(lambda raw: codec.decode(raw, TemplateEvent))


def version_body(version: TemplateVersion) -> dict[str, Any]:
    return version.model_dump(mode="json")


def _template_body(catalog: TemplateCatalog, name: str) -> dict[str, Any]:
    versions = catalog.versions(name)
    return {
        "name": name,
        "latest_version": versions[-1].version,
        "active": [version_body(v) for v in catalog.active(name)],
    }


@requires("operator")
async def list_templates(request: web.Request) -> web.Response:
    catalog = await current(request)
    items = [_template_body(catalog, name) for name in catalog.names()]
    return web.json_response({"items": items})


def _existing(catalog: TemplateCatalog, name: str) -> list[TemplateVersion]:
    versions = catalog.versions(name)
    if not versions:
        raise NotFoundError(f"template {name!r}")
    return versions


@requires("operator")
async def get_template(request: web.Request) -> web.Response:
    name = name_of(request)
    catalog = await current(request)
    versions = _existing(catalog, name)
    body = _template_body(catalog, name) | {"versions": [version_body(v) for v in versions]}
    return web.json_response(body)


async def _json_body(request: web.Request) -> dict[str, Any]:
    require_json(request)
    raw = await read_body(request, request.app[SETTINGS].api.max_body_bytes)
    return parse_json_object(raw)


async def _write(request: web.Request, versions: list[TemplateVersion]) -> list[dict[str, Any]]:
    """Each version's record, acknowledged; what the answer says of each."""
    app = request.app
    codec = await app[CODEC].codec()
    topic = app[CATALOG].templates.name
    now = datetime.now(UTC)
    events = [version_event(version, now, SOURCE) for version in versions]
    positions: list[RecordPosition] = await asyncio.gather(
        *(
            app[PRODUCER].send(topic, event.payload.key.encode(), codec.encode(event))
            for event in events
        )
    )
    return [
        {
            "version": event.payload.version,
            "active": event.payload.active,
            "event_id": str(event.event_id),
            "topic": position.topic,
            "partition": position.partition,
            "offset": position.offset,
        }
        for event, position in zip(events, positions, strict=True)
    ]


def _inherited_sample(
    catalog: TemplateCatalog, name: str, new: NewTemplateVersion
) -> dict[str, str]:
    if new.sample is not None:
        return dict(new.sample)
    same = catalog.active_in(name, new.locale, new.channel)
    if same is not None:
        return dict(same.sample)
    versions = catalog.versions(name)
    return dict(versions[-1].sample) if versions else {}


@requires("operator")
async def add_version(request: web.Request) -> web.Response:
    name = name_of(request)
    new = validate(NewTemplateVersion, await _json_body(request))
    async with request.app[WRITE_LOCK]:
        catalog = await current(request)
        version = TemplateVersion(
            name=name,
            channel=new.channel,
            locale=new.locale,
            version=catalog.next_version(name),
            subject=new.subject,
            body=new.body,
            active=False,
            sample=_inherited_sample(catalog, name, new),
        )
        (written,) = await _write(request, [version])
    body = version_body(version) | {"written": [written]}
    location = f"/v1/templates/{name}/versions/{version.version}"
    return web.json_response(body, status=201, headers={"Location": location})


def rendered(
    request: web.Request, version: TemplateVersion, channel: Any, variables: dict[str, str]
) -> dict[str, Any]:
    """The version rendered, or a `TemplateRejectedError` naming the part and line."""
    numbers = number_locale(version.locale, NUMBERS_FALLBACK)
    try:
        message = render_version(request.app[SANDBOX], version, channel, variables, numbers)
    except TemplateSourceError as exc:
        raise TemplateRejectedError(exc.part, exc.line, exc.message) from None
    return {"subject": message.subject, "body": message.body}


def _version(catalog: TemplateCatalog, name: str, number: int) -> TemplateVersion:
    _existing(catalog, name)
    version = catalog.get(name, number)
    if version is None:
        raise NotFoundError(f"version {number} of template {name!r}")
    return version


@requires("operator")
async def preview(request: web.Request) -> web.Response:
    name = name_of(request)
    asked = validate(TemplatePreview, await _json_body(request))
    catalog = await current(request)
    versions = _existing(catalog, name)
    version = versions[-1] if asked.version is None else _version(catalog, name, asked.version)
    variables = {**version.sample, **(asked.variables or {})}
    channel = asked.channel or version.channel
    body = {
        "name": name,
        "version": version.version,
        "locale": version.locale,
        "channel": channel,
        "variables": variables,
    } | rendered(request, version, channel, variables)
    return web.json_response(body)


async def _set_active(request: web.Request, active: bool) -> web.Response:
    name = name_of(request)
    number = version_number_of(request)
    async with request.app[WRITE_LOCK]:
        catalog = await current(request)
        version = _version(catalog, name, number)
        changes = [version.model_copy(update={"active": active})]
        if active:
            rendered(request, version, version.channel, dict(version.sample))
            replaced = catalog.active_in(name, version.locale, version.channel)
            if replaced is not None and replaced.version != number:
                changes.append(replaced.model_copy(update={"active": False}))
        written = await _write(request, changes)
    body = version_body(changes[0]) | {"written": written}
    return web.json_response(body)


@requires("operator")
async def activate(request: web.Request) -> web.Response:
    return await _set_active(request, True)


@requires("operator")
async def deactivate(request: web.Request) -> web.Response:
    return await _set_active(request, False)


def routes() -> list[web.RouteDef]:
    base = "/v1/templates/{name}"
    return [
        web.get("/v1/templates", list_templates, name="templates-list"),
        web.get(base, get_template, name="templates-get"),
        web.post(f"{base}/versions", add_version, name="templates-add-version"),
        web.post(f"{base}/preview", preview, name="templates-preview"),
        web.post(f"{base}/versions/{{version}}/activate", activate, name="templates-activate"),
        web.post(
            f"{base}/versions/{{version}}/deactivate", deactivate, name="templates-deactivate"
        ),
    ]
