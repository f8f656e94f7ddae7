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
    configure_logging,
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


def _without_time(line: str) -> dict[str, Any]:
    fields: dict[str, Any] = json.loads(line)
    datetime.fromisoformat(fields.pop("timestamp"))  # a time in either rendering
    return fields


def test_a_plain_record_is_rendered_as_structlogs_chain_renders_it() -> None:
    """JSON lines without an exception take a short path (about a fifth of the chain's CPU on
    an access line); every field, its value and its place are what the chain gives."""
    fast, chain = formatter("json"), formatter("json")
    chain.fast_path = False
    event_id = uuid.uuid4()
    at = datetime(2026, 12, 7, 1, 2, 3, tzinfo=UTC)
    records = [
        lambda: _record("%s %s %d in %.1f ms", "POST", "/v1/webhooks/orders", 202, 1.25),
        lambda: _record("sent", event_id=event_id, at=at, attempt=2, ids=[event_id]),
        lambda: _record("plain %", topic="orders.events"),
        lambda: _record("odd", thing=object.__new__(_Opaque)),
        lambda: _record("mine", request_id="from-extra"),  # the call's field over the task's
    ]
    with log_context(request_id="req-1", agent="track_deliveries"):
        for make in records:
            record_a, record_b = make(), make()
            rendered_fast, rendered_chain = fast.format(record_a), chain.format(record_b)
            assert list(json.loads(rendered_fast)) == list(json.loads(rendered_chain))
            assert _without_time(rendered_fast) == _without_time(rendered_chain)


def test_a_line_carries_the_time_the_record_was_made_in_utc() -> None:
    record = _record("at a known time")
    record.created = datetime(2026, 12, 7, 1, 2, 3, 456789, tzinfo=UTC).timestamp()
    line = json.loads(formatter("json").format(record))
    assert line["timestamp"] == "2026-12-07T01:02:03.456789Z"


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


def test_a_configured_process_does_not_look_up_what_no_line_shows() -> None:
    """No frame walk for the caller, no thread or process ids: no line renders them."""
    saved = (logging._srcfile, logging.logThreads, logging.logProcesses, logging.logMultiprocessing)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    made: list[logging.LogRecord] = []
    capture = logging.Handler()
    capture.emit = made.append  # type: ignore[method-assign]
    try:
        configure_logging("info", "json")
        root.addHandler(capture)
        logging.getLogger("tributary.test").info("made")
        [record] = made
        assert (record.pathname, record.lineno) == ("(unknown file)", 0)
        assert (record.thread, record.process, record.processName) == (None, None, None)
    finally:
        (
            logging._srcfile,
            logging.logThreads,
            logging.logProcesses,
            logging.logMultiprocessing,
        ) = saved
        root.handlers[:] = handlers
        root.setLevel(level)
