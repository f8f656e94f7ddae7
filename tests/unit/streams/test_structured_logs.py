"""Log lines as an operator reads them: JSON with the context of the task and the call."""

from __future__ import annotations

import json
import logging
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from streams.structured_logs import (
    CONTEXT_FIELDS,
    formatter,
    log_context,
    logging_config,
)


def _record(message: str, *args: object, **extra: Any) -> logging.LogRecord:
    record = logging.getLogger("tributary.test").makeRecord(
        "tributary.test", logging.WARNING, __file__, 1, message, args, None, extra=extra
    )
    return record


def test_a_json_line_leads_with_time_level_logger_and_message() -> None:
    line = json.loads(formatter("json").format(_record("%d events", 3)))

    assert list(line)[:4] == ["timestamp", "level", "logger", "message"]
    assert line["level"] == "warning"
    assert line["logger"] == "tributary.test"
    assert line["message"] == "3 events"


def test_the_task_context_and_the_calls_extra_fields_are_in_the_line() -> None:
    with log_context(request_id="req-1", correlation_id="cart-9", notification_id=None):
        record = _record("dead-lettering", topic="orders.events", partition=2, offset=41)
        line = json.loads(formatter("json").format(record))
    outside = json.loads(formatter("json").format(_record("later")))

    assert line["request_id"] == "req-1"
    assert line["correlation_id"] == "cart-9"
    assert "notification_id" not in line
    assert (line["topic"], line["partition"], line["offset"]) == ("orders.events", 2, 41)
    assert "request_id" not in outside


def test_ids_and_times_are_their_text_and_other_objects_their_repr() -> None:
    event_id = uuid.UUID("3f0c0d2e-4b7a-4e43-9b11-0c0a4c9e0a55")
    at = datetime(2026, 12, 6, 18, 30, 1, 250000, tzinfo=UTC)
    record = _record("applied", event_id=event_id, offset=41, at=at, held=_Opaque())
    line = json.loads(formatter("json").format(record))

    assert line["event_id"] == "3f0c0d2e-4b7a-4e43-9b11-0c0a4c9e0a55"
    assert line["at"] == "2026-12-06T18:30:01.250000+00:00"
    assert line["held"] == "<opaque>"
    assert line["offset"] == 41


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


def test_an_exception_is_a_text_traceback_without_the_frames_locals() -> None:
    secret = "whsec_not-for-logs"
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    assert secret
    line = json.loads(formatter("json").format(record))

    assert "ValueError: bad" in line["exception"]
    assert secret not in json.dumps(line)


def test_the_console_format_is_one_readable_line_with_the_same_fields() -> None:
    with log_context(request_id="req-2"):
        text = formatter("console").format(_record("answered", topic="t"))

    assert "answered" in text
    assert "request_id" in text
    assert "req-2" in text
    assert not text.lstrip().startswith("{")


def test_the_processes_config_sends_the_root_logger_to_stderr_through_the_formatter() -> None:
    config = logging_config("debug", "json")

    assert config["root"] == {"level": "DEBUG", "handlers": ["stderr"]}
    assert config["handlers"]["stderr"]["stream"] == "ext://sys.stderr"
    assert config["formatters"]["structured"]["log_format"] == "json"
    assert {"event_id", "correlation_id", "agent", "topic", "partition", "offset"} <= set(
        CONTEXT_FIELDS
    )
