"""Schemathesis against the live API (real Kafka, PostgreSQL, Redis), from the served document:
every operation, at least 50 generated cases each, with a key of every scope. No answer may be a
5xx, and every answer must be one the document declares (status, content type, body schema).

Schemathesis (a dev dependency) generates the cases from the document with Hypothesis, which is
what makes "no 5xx" mean more than the inputs we thought of; its checks are the conformance half.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from streams.kafka.topic_admin import delete_topics_blocking, ensure_topics_blocking
from streams.settings import Settings
from tests.integration.api.live_api import serving
from tests.integration.api_keys import bearer, create_key
from tests.integration.conftest import isolated_settings
from tests.integration.kafka_io import topic_catalog

CASES_PER_OPERATION = 50
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def live(stack_settings: Settings) -> Iterator[tuple[str, dict[str, str]]]:
    isolated = isolated_settings(stack_settings)
    ensure_topics_blocking(isolated.kafka, topic_catalog(isolated).all())
    with ThreadPoolExecutor(max_workers=1) as pool:
        key = pool.submit(asyncio.run, create_key(isolated.database)).result()
    try:
        with serving(isolated) as url:
            yield url, bearer(key)
    finally:
        delete_topics_blocking(isolated.kafka, [isolated.topic_prefix])


def _operations(url: str) -> list[schemathesis.schemas.APIOperation]:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def test_the_served_document_loads_and_covers_every_operation(
    live: tuple[str, dict[str, str]],
) -> None:
    url, _ = live
    labels = {operation.label for operation in _operations(url)}
    assert "GET /v1/orders/{id}" in labels
    assert "POST /v1/webhooks/providers/{provider}" in labels
    assert len(labels) >= 18


def _fuzz(
    url: str,
    headers: dict[str, str],
    mode: GenerationMode,
    checks: list[Any],
) -> list[str]:
    """Run every operation's cases; the failures, one entry per operation."""
    session = requests.Session()
    failures: list[str] = []
    for operation in _operations(url):
        seen = 0

        @settings(
            max_examples=CASES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: schemathesis.Case) -> None:
            nonlocal seen
            seen += 1
            response = case.call(base_url=url, session=session, headers=headers)
            case.validate_response(response, checks=checks, headers=headers)

        try:
            run()
        except Unsatisfiable:
            # Negative mode, for an operation with nothing to get wrong (no parameters, or only
            # free strings): there is no negative case to try.
            if mode is GenerationMode.POSITIVE:
                raise
        except (Exception, FailureGroup) as exc:  # noqa: BLE001 - every operation's failures
            failures.append(f"{operation.label}: {exc}")
        # An operation without inputs has one distinct case; every other one gets its 50.
        has_inputs = any(True for _ in operation.iter_parameters()) or operation.body
        if mode is GenerationMode.POSITIVE:
            assert seen >= (CASES_PER_OPERATION if has_inputs else 1), (operation.label, seen)
    return failures


def test_no_operation_answers_5xx_and_every_answer_conforms(
    live: tuple[str, dict[str, str]],
) -> None:
    url, headers = live
    failures = _fuzz(url, headers, GenerationMode.POSITIVE, CHECKS)
    assert not failures, "\n\n".join(failures)


def test_inputs_outside_the_document_never_answer_5xx(
    live: tuple[str, dict[str, str]],
) -> None:
    """Negative cases (wrong types, missing fields, values outside the schemas): 4xx, never 5xx."""
    url, headers = live
    failures = _fuzz(url, headers, GenerationMode.NEGATIVE, [not_a_server_error])
    assert not failures, "\n\n".join(failures)
