"""The OpenAPI document lists exactly the app's routes, with their path parameters and scopes."""

from __future__ import annotations

import re

from api.access import declared_access
from api.app import create_app
from api.openapi import document
from streams.settings import Settings

# The schema registry's catch-all, which only answers the Schema Registry's own 404s.
CATCH_ALL = "/schema-registry/{tail}"
METHODS = {"get", "post", "put", "patch", "delete"}


def _app_routes() -> dict[tuple[str, str], object]:
    app = create_app(Settings())
    found: dict[tuple[str, str], object] = {}
    for route in app.router.routes():
        if route.resource is None or route.method == "HEAD":
            continue
        path = route.resource.canonical
        if path == CATCH_ALL:
            continue
        found[(route.method.lower(), path)] = route.handler
    return found


def test_every_route_is_documented_and_nothing_else() -> None:
    documented = {
        (method, path)
        for path, item in document()["paths"].items()
        for method in item
        if method in METHODS
    }
    assert documented == set(_app_routes())


def test_path_parameters_match_the_templates() -> None:
    for path, item in document()["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for method, operation in item.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (method, path)


def test_each_operation_states_the_scope_its_handler_declares() -> None:
    handlers = _app_routes()
    for path, item in document()["paths"].items():
        for method, operation in item.items():
            declared = declared_access(handlers[(method, path)])
            assert operation.get("x-scope") == declared, (method, path)
            security = operation["security"]
            if declared is None or declared == "signed-webhook":
                assert all("apiKey" not in entry for entry in security), (method, path)
            else:
                assert security == [{"apiKey": [declared]}], (method, path)


def test_every_reference_resolves() -> None:
    doc = document()
    text = str(doc)
    for ref in set(re.findall(r"#/components/(\w+)/([\w-]+)", text)):
        kind, name = ref
        assert name in doc["components"][kind], ref
