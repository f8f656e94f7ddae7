"""Which X-Request-Id an answer carries, and the access line that logs it."""

from __future__ import annotations

import json
import logging
import uuid

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from api.access_log import StructuredAccessLogger
from api.problems import Problem
from api.request_ids import request_id_for
from streams.structured_logs import formatter


def test_a_usable_incoming_id_is_kept() -> None:
    assert request_id_for("req-7:abc/DEF") == "req-7:abc/DEF"


def test_a_missing_empty_spaced_or_oversized_id_is_replaced_by_a_new_uuid() -> None:
    made = [request_id_for(value) for value in (None, "", "has space", "x" * 129, "é")]

    assert all(uuid.UUID(value) for value in made)
    assert len(set(made)) == len(made)


def test_a_problem_body_names_the_request() -> None:
    body = Problem(404, "Not found", "no order 'x'").body("/v1/orders/x", "req-9")
    assert body["request_id"] == "req-9"
    assert body["instance"] == "/v1/orders/x"


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(formatter("json").format(record))


def test_the_access_line_carries_the_answers_request_id_status_and_duration() -> None:
    logger = logging.getLogger("tributary.test.access")
    logger.setLevel(logging.INFO)
    handler = ListHandler()
    logger.addHandler(handler)
    request = make_mocked_request("POST", "/v1/webhooks/orders")
    response = web.Response(status=202, headers={"X-Request-Id": "req-3"})

    StructuredAccessLogger(logger, "").log(request, response, 0.0042)

    [line] = [json.loads(text) for text in handler.lines]
    assert line["message"] == "POST /v1/webhooks/orders 202 in 4.2 ms"
    assert (line["request_id"], line["status"], line["duration_ms"]) == ("req-3", 202, 4.2)
