from __future__ import annotations

import io

import pytest

from streams.cli import Console, run
from streams.cli.arguments import parse
from streams.cli.errors import UsageError
from streams.settings import CliProcessSettings


def test_every_command_parses() -> None:
    assert parse(["topics", "list"]).action == "list"
    assert parse(["--prefix", "t1-", "topics", "describe", "orders.events"]).prefix == "t1-"
    produce = parse(["produce", "order.created", "--json", "-", "--key", "k1"])
    assert (produce.event_type, produce.json, produce.key) == ("order.created", "-", "k1")
    tail = parse(["tail", "orders.events", "--from-beginning", "--follow", "--max", "3"])
    assert (tail.from_beginning, tail.follow, tail.max_records, tail.timeout_s) == (
        True,
        True,
        3,
        None,
    )
    redrive = parse(["dlq", "redrive", "orders.events", "--offset", "1:5", "--offset", "2:0"])
    assert (redrive.all, redrive.offset) == (False, ["1:5", "2:0"])
    assert parse(["dlq", "redrive", "orders.events", "--all"]).all is True
    rebuild = parse(["stats", "rebuild", "--since", "2026-12-06T09:00:00Z"])
    assert (rebuild.action, rebuild.since.isoformat(), rebuild.until) == (
        "rebuild",
        "2026-12-06T09:00:00+00:00",
        None,
    )


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        ([], "required: command"),
        (["topics"], "required: action"),
        (["produce", "order.created"], "--json"),
        (["tail", "orders.events", "--max", "0"], "must be at least 1"),
        (["tail", "orders.events", "--timeout-s", "-1"], "must be positive"),
        (["dlq", "redrive", "orders.events"], "one of the arguments --all --offset is required"),
        (["dlq", "redrive", "orders.events", "--all", "--offset", "1:2"], "not allowed with"),
        (["stats", "rebuild"], "--since"),
        (["stats", "rebuild", "--since", "2026-12-06T09:00:00"], "must carry a UTC offset"),
    ],
)
def test_bad_command_lines_are_usage_errors(argv: list[str], complaint: str) -> None:
    with pytest.raises(UsageError, match=complaint):
        parse(argv)


async def test_a_usage_error_exits_2_with_the_reason_on_stderr_and_nothing_on_stdout() -> None:
    console = Console(io.StringIO(), io.StringIO(), io.StringIO())
    assert await run(["dlq", "redrive", "orders.events"], CliProcessSettings(), console) == 2
    assert "--all --offset" in console.stderr.getvalue()
    assert console.stdout.getvalue() == ""


async def test_an_unreadable_input_file_exits_2() -> None:
    console = Console(io.StringIO(), io.StringIO(), io.StringIO())
    argv = ["produce", "order.created", "--json", "/nonexistent/event.json"]
    assert await run(argv, CliProcessSettings(), console) == 2
    assert "cannot read /nonexistent/event.json" in console.stderr.getvalue()


async def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert await run(["--help"], CliProcessSettings()) == 0
    assert "dlq" in capsys.readouterr().out
