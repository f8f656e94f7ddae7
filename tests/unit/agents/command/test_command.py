"""The installed command's own part: which commands it keeps, and how progress is shown."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest

from agents.command import command_of, progress_printer
from agents.replay.runner import PHASE_KEYS, ProgressSample
from streams.cli import Console, run
from streams.cli.arguments import parse
from streams.cli.errors import UsageError
from tests.unit.fakes import FakeClock


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["replay", "orders"], "replay"),
        (["--prefix", "t-", "replay", "orders"], "replay"),
        (["--prefix=t-", "replay", "sessions"], "replay"),
        (["tail", "orders.events"], "tail"),
        (["--help"], None),
        ([], None),
    ],
)
def test_the_subcommand_is_found_after_the_global_option(
    argv: list[str], command: str | None
) -> None:
    assert command_of(argv) == command


def test_replay_arguments_are_parsed_and_checked() -> None:
    args = parse(["replay", "orders", "--since", "2026-12-01T00:00:00Z", "--dry-run"])
    assert (args.view, args.since, args.dry_run) == (
        "orders",
        datetime(2026, 12, 1, tzinfo=UTC),
        True,
    )
    with pytest.raises(UsageError, match="invalid choice"):
        parse(["replay", "everything"])
    with pytest.raises(UsageError, match="UTC offset"):
        parse(["replay", "orders", "--since", "2026-12-01T00:00:00"])


async def test_streams_cli_alone_refuses_replay_and_says_where_it_runs() -> None:
    err = io.StringIO()
    code = await run(["replay", "orders"], console=Console(io.StringIO(), io.StringIO(), err))
    assert code == 2
    assert "agents.command" in err.getvalue()


def sample(records: int, lag: int) -> ProgressSample:
    return ProgressSample("orders", records, records / 2, lag, 2.0)


def test_progress_is_a_rewritten_line_on_a_terminal() -> None:
    out, err = io.StringIO(), io.StringIO()
    show = progress_printer(out, err, terminal=True)
    show(sample(1000, 50))
    show(sample(2000, 0))
    assert out.getvalue() == ""
    assert err.getvalue().count("\r") == 2
    assert "orders: 2,000 records, 1,000/s, lag 0" in err.getvalue()


def test_the_read_of_the_keys_since_a_time_is_named_in_progress() -> None:
    out, err = io.StringIO(), io.StringIO()
    progress_printer(out, err, terminal=True)(
        ProgressSample("sessions", 7, 7.0, 3, 1.0, phase=PHASE_KEYS)
    )
    assert "sessions (keys): 7 records" in err.getvalue()
    progress_printer(out, err, terminal=False)(ProgressSample("sessions", 7, 7.0, 0, 1.0))
    assert json.loads(out.getvalue())["progress"]["phase"] == "fold"


def test_progress_is_json_lines_at_most_every_second_otherwise() -> None:
    out, err = io.StringIO(), io.StringIO()
    clock = FakeClock()
    show = progress_printer(out, err, terminal=False, clock=clock)
    show(sample(10, 90))
    show(sample(20, 80))  # same instant: not repeated
    clock.now_s += 1.0
    show(sample(30, 70))
    show(sample(100, 0))  # the end is always shown
    lines = [json.loads(line)["progress"] for line in out.getvalue().splitlines()]
    assert [(line["records"], line["lag"]) for line in lines] == [(10, 90), (30, 70), (100, 0)]
    assert lines[0]["records_per_s"] == 5.0
    assert err.getvalue() == ""
