"""Each error maps to one status and problem type; 5xx bodies never leak exception text."""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from api.errors import (
    NotFoundError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    WebhookSecretMissingError,
)
from api.problems import PROBLEM_JSON, TYPE_BASE, problem_for
from streams.errors import (
    ContractViolationError,
    FieldError,
    InvalidSignatureError,
    MalformedBodyError,
    RetriableError,
    ServiceUnavailableError,
)
from streams.operator_auth import OperatorAuthError
from streams.stores.webhook_ledger import CorruptLedgerEntryError, DeliveryInProgressError

RETRY_AFTER_S = 7


@pytest.mark.parametrize(
    ("error", "status", "slug"),
    [
        (
            InvalidSignatureError("no signature matches", "webhook-signature"),
            401,
            "invalid-signature",
        ),
        (PayloadTooLargeError(1024), 413, "payload-too-large"),
        (UnsupportedMediaTypeError("text/plain"), 415, "unsupported-media-type"),
        (MalformedBodyError("not JSON"), 400, "malformed-body"),
        (ContractViolationError("OrderWebhook", []), 422, "contract-violation"),
        (NotFoundError("order 'x'"), 404, "not-found"),
        (DeliveryInProgressError("orders", "msg_1", 15), 409, "delivery-in-progress"),
        (ServiceUnavailableError("kafka", "boom"), 503, "service-unavailable"),
        (RetriableError("later"), 503, "service-unavailable"),
        (WebhookSecretMissingError("orders"), 503, "misconfigured"),
    ],
)
def test_each_error_has_its_status_and_type(error: Exception, status: int, slug: str) -> None:
    problem = problem_for(error, RETRY_AFTER_S)
    assert (problem.status, problem.type) == (status, TYPE_BASE + slug)


@pytest.mark.parametrize(
    "error",
    [
        DeliveryInProgressError("orders", "msg_1", 15),
        ServiceUnavailableError("kafka", "boom"),
        WebhookSecretMissingError("orders"),
    ],
)
def test_answers_that_invite_a_retry_say_when(error: Exception) -> None:
    assert problem_for(error, RETRY_AFTER_S).headers["Retry-After"] == str(RETRY_AFTER_S)


def test_the_body_has_the_rfc_9457_members_and_the_request_path_as_instance() -> None:
    error = InvalidSignatureError("the webhook-id header is missing", "webhook-id")
    body = problem_for(error, RETRY_AFTER_S).body("/v1/webhooks/orders")
    assert body == {
        "type": TYPE_BASE + "invalid-signature",
        "title": "Invalid webhook signature",
        "status": 401,
        "detail": "the webhook-id header is missing",
        "instance": "/v1/webhooks/orders",
        "header": "webhook-id",
    }


def test_a_contract_violation_lists_every_field() -> None:
    errors = [FieldError("order.currency", "bad code"), FieldError("type", "unknown type")]
    body = problem_for(ContractViolationError("OrderWebhook", errors), RETRY_AFTER_S).body("/x")
    assert body["errors"] == [
        {"field": "order.currency", "message": "bad code"},
        {"field": "type", "message": "unknown type"},
    ]


def test_a_service_outage_names_the_service_but_not_the_drivers_detail() -> None:
    error = ServiceUnavailableError("kafka", "KafkaConnectionError('10.0.0.7:9092')")
    body = problem_for(error, RETRY_AFTER_S).body("/x")
    assert body["service"] == "kafka"
    assert "10.0.0.7" not in json.dumps(body)


@pytest.mark.parametrize(
    "error", [KeyError("secret internals"), CorruptLedgerEntryError("secret internals")]
)
def test_unexpected_errors_are_a_500_without_internals(error: Exception) -> None:
    problem = problem_for(error, RETRY_AFTER_S)
    assert problem.status == 500
    assert "secret internals" not in json.dumps(problem.body("/x"))


def test_aiohttp_errors_keep_their_status_and_allow_header() -> None:
    error = web.HTTPMethodNotAllowed("DELETE", ["GET", "POST"])
    problem = problem_for(error, RETRY_AFTER_S)
    assert problem.status == 405
    assert problem.headers["Allow"] == "GET,POST"
    assert "Content-Type" not in problem.headers


def test_the_response_is_problem_json() -> None:
    response = problem_for(NotFoundError("order 'x'"), RETRY_AFTER_S).response("/v1/orders/x")
    assert response.content_type == PROBLEM_JSON
    assert response.status == 404
    assert response.text is not None
    assert json.loads(response.text)["instance"] == "/v1/orders/x"


@pytest.mark.parametrize(
    ("status", "slug"), [(401, "unauthorized"), (403, "operator-access-disabled")]
)
def test_operator_auth_errors_answer_401_with_a_challenge_or_403(status: int, slug: str) -> None:
    problem = problem_for(OperatorAuthError(status, "no"), RETRY_AFTER_S)
    assert problem.status == status
    assert problem.type == TYPE_BASE + slug
    assert ("WWW-Authenticate" in problem.headers) is (status == 401)
