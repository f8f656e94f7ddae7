"""Running `tributary` in-process on a test's settings, and reading what it printed."""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from schemas import examples
from streams.cli import Console, run
from streams.kafka.event_producer import EventProducer
from streams.settings import Settings

WAIT_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Result:
    code: int
    lines: list[dict[str, Any]]
    stderr: str


def console(stdin: str = "") -> Console:
    return Console(io.StringIO(stdin), io.StringIO(), io.StringIO())


def printed(used: Console) -> list[dict[str, Any]]:
    assert isinstance(used.stdout, io.StringIO)
    return [json.loads(line) for line in used.stdout.getvalue().splitlines()]


async def cli(settings: Settings, *argv: str, stdin: str = "") -> Result:
    used = console(stdin)
    code = await run(list(argv), settings, used)
    assert isinstance(used.stderr, io.StringIO)
    return Result(code, printed(used), used.stderr.getvalue())


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll `condition` until it holds; fail naming `what` once the deadline passes."""
    deadline = time.monotonic() + WAIT_TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def new_order_id() -> str:
    return f"ord-{uuid.uuid4().hex[:12]}"


def order_body(order_id: str, **changes: Any) -> dict[str, Any]:
    """The example `order.created` webhook body (a deep copy) for `order_id`."""
    body: dict[str, Any] = json.loads(json.dumps(examples.webhook_body("order.created")))
    body["order"]["id"] = order_id
    return body | changes


async def produce_raw(
    settings: Settings,
    topic: str,
    key: bytes,
    value: bytes,
    headers: tuple[tuple[str, bytes], ...] = (),
) -> None:
    async with EventProducer(settings.kafka) as producer:
        await producer.send(topic, key, value, headers)
