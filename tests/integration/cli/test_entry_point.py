"""The real entry point as a process: settings from TRIBUTARY_* variables, exit codes, streams."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from streams.settings import Settings
from tests.integration.api.support import closed_port
from tests.integration.cli.support import new_order_id, order_body

REPO = Path(__file__).resolve().parents[3]
RUN_TIMEOUT_S = 60.0


async def tributary(env: dict[str, str], *argv: str, stdin: str = "") -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "streams.cli",
        *argv,
        env=env | {"PATH": "/usr/bin:/bin"},
        cwd=REPO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(RUN_TIMEOUT_S):
            out, err = await process.communicate(stdin.encode())
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def environment(settings: Settings) -> dict[str, str]:
    return {
        "TRIBUTARY_KAFKA_BOOTSTRAP": settings.kafka.bootstrap,
        "TRIBUTARY_TOPIC_PREFIX": settings.topic_prefix,
        "TRIBUTARY_WORKER_APP_ID": settings.worker.app_id,
    }


async def test_produce_and_tail_as_processes_configured_by_the_environment(
    settings: Settings,
) -> None:
    env = environment(settings)
    order_id = new_order_id()
    code, out, err = await tributary(
        env, "produce", "order.created", "--json", "-", stdin=json.dumps(order_body(order_id))
    )
    assert code == 0, err
    receipt = json.loads(out)
    assert receipt["topic"] == f"{settings.topic_prefix}orders.events"

    code, out, err = await tributary(env, "tail", "orders.events", "--from-beginning")
    assert code == 0, err
    [line] = [json.loads(text) for text in out.splitlines()]
    assert (line["key"], line["value"]["event_id"]) == (order_id, receipt["event_id"])


async def test_prefix_option_overrides_the_environment(settings: Settings) -> None:
    env = environment(settings) | {"TRIBUTARY_TOPIC_PREFIX": "nobody-uses-this-"}
    code, out, err = await tributary(env, "--prefix", settings.topic_prefix, "topics", "list")
    assert code == 0, err
    topics = [json.loads(text)["topic"] for text in out.splitlines()]
    assert topics
    assert all(topic.startswith(settings.topic_prefix) for topic in topics)


async def test_an_unreachable_kafka_exits_1_naming_it(settings: Settings) -> None:
    env = environment(settings) | {
        "TRIBUTARY_KAFKA_BOOTSTRAP": f"127.0.0.1:{closed_port()}",
        "TRIBUTARY_KAFKA_REQUEST_TIMEOUT_S": "2",
    }
    code, out, err = await tributary(env, "topics", "list")
    assert (code, out) == (1, "")
    assert "error: kafka is unavailable" in err


async def test_a_usage_error_exits_2(settings: Settings) -> None:
    code, out, err = await tributary(environment(settings), "tail")
    assert (code, out) == (2, "")
    assert "the following arguments are required: topic" in err
