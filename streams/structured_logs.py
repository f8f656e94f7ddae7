"""Every process's log lines: one JSON object per line, or readable columns on a terminal.

The code logs through the standard library (`logging.getLogger(__name__)`), as do Faust, aiohttp
and the drivers; structlog's `ProcessorFormatter` renders every record the same way, adding:

- the context bound with `log_context` (structlog's context variables, so per task: the API's
  `request_id` for one request, a worker agent's `agent` for its task);
- the fields a call passes as `extra=` (`event_id`, `topic`, `partition`, `offset`, ...).

A JSON line holds `timestamp`, `level`, `logger`, `message`, those fields, and `exception` with
the traceback when there is one, so that an operator can join the lines of one flow on
`correlation_id` or `request_id`. `TRIBUTARY_LOG_FORMAT=console` (what `make dev` sets) renders
the same records as aligned, coloured text for a person watching.
"""

from __future__ import annotations

import logging.config
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
import structlog

LogFormat = Literal["json", "console"]

# The fields an operator joins lines on; `log_context` and `extra=` take these names.
CONTEXT_FIELDS = (
    "request_id",
    "event_id",
    "correlation_id",
    "agent",
    "topic",
    "partition",
    "offset",
    "notification_id",
)


def _pre_chain() -> list[Any]:
    """What every record goes through before rendering, whatever logger made it."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


LEADING_KEYS = ("timestamp", "level", "logger", "message")


def _leading_keys_first(_logger: Any, _name: str, event_dict: Any) -> Any:
    """timestamp, level, logger and message first in every line, the context after them."""
    leading = {key: event_dict.pop(key) for key in LEADING_KEYS if key in event_dict}
    return leading | event_dict


def _json_line(event_dict: Any, default: Any) -> str:
    """orjson: ids and times as their text (stdlib json left them to `default`, which wrote
    `UUID('…')`, so a line's event id did not match the same id logged as text elsewhere), and
    a twelfth of stdlib json's time on an access line (0.5 against 6.6 µs); anything else it
    cannot write goes to structlog's `default` (its repr)."""
    return orjson.dumps(event_dict, default=default).decode()


def _renderer(log_format: LogFormat) -> list[Any]:
    if log_format == "console":  # coloured only for a terminal, never in a piped log file
        colors = sys.stderr.isatty()
        return [structlog.dev.ConsoleRenderer(event_key="message", colors=colors)]
    # A traceback as text under `exception` (never the frames' locals: they may hold secrets).
    return [
        structlog.processors.format_exc_info,
        _leading_keys_first,
        structlog.processors.JSONRenderer(serializer=_json_line),
    ]


# What every `LogRecord` has; its other attributes are the call's `extra=` fields.
_RECORD_KEYS = frozenset(logging.LogRecord("name", 0, "pathname", 0, "msg", (), None).__dict__)


class JsonLines(structlog.stdlib.ProcessorFormatter):
    """structlog's formatter, with a short path for a record without an exception or a stack.

    The chain (`_pre_chain`, then the renderer's processors) copies the record and calls nine
    processors for every line: 32-37 µs to format the API's access line, against 11-15 here (the
    access line was 11 % of the API's samples at ingest saturation). A plain record is rendered
    in one pass to the same fields in the same order (the task's context, the call's fields over
    it, the leading four first), with the time the record was made; the rest go through the
    chain.
    """

    fast_path = True

    def format(self, record: logging.LogRecord) -> str:
        fields = record.__dict__
        if not self.fast_path or record.exc_info or record.exc_text or record.stack_info:
            return super().format(record)
        if "_logger" in fields:  # a structlog logger's record: its event dict is the message
            return super().format(record)
        line: dict[str, Any] = {
            name: value
            for name, value in structlog.contextvars.get_contextvars().items()
            if name != "event"
        }
        line["level"] = record.levelname.lower()
        line["logger"] = record.name
        for name, value in fields.items():
            if name not in _RECORD_KEYS:
                line[name] = value
        line["timestamp"] = (
            datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z")
        )
        line["message"] = record.getMessage()
        return _json_line(_leading_keys_first(None, "", line), repr)


def formatter(log_format: LogFormat) -> structlog.stdlib.ProcessorFormatter:
    """The formatter of every handler of the process (tests render records with it)."""
    make = JsonLines if log_format == "json" else structlog.stdlib.ProcessorFormatter
    return make(
        foreign_pre_chain=_pre_chain(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.EventRenamer("message"),
            *_renderer(log_format),
        ],
    )


def logging_config(level: str, log_format: LogFormat) -> dict[str, Any]:
    """A `logging.config.dictConfig` dictionary: the root logs to stderr through `formatter`.

    The Faust worker takes it as is (`logging_config=`), since Faust configures logging itself."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": {"()": formatter, "log_format": log_format}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "structured",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
    }


def configure_logging(level: str, log_format: LogFormat) -> None:
    """Configure the process's logging once, at its entry point.

    Records no longer gather what no line shows (the Logging HOWTO's "Optimization"): where
    the call was made (a walk up the stack for every record), the thread and the process. With
    `JsonLines`' short path, an access line costs 34-36 µs of CPU instead of 46-50."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.config.dictConfig(logging_config(level, log_format))


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Bind `fields` (those not None) to every line logged in this task until the block ends."""
    known = {name: value for name, value in fields.items() if value is not None}
    with structlog.contextvars.bound_contextvars(**known):
        yield


def bind_log_context(**fields: object) -> None:
    """Bind `fields` for the rest of the current task (an agent's, a request's)."""
    structlog.contextvars.bind_contextvars(
        **{name: value for name, value in fields.items() if value is not None}
    )
