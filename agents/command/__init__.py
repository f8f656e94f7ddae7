"""The installed `tributary` command: `streams.cli`'s commands, plus `replay`.

`replay` runs the worker's folds, which live here in `agents` (below which `streams.cli` may not
reach), so the console script enters here: `tributary replay …` is handled by this package,
every other command by `streams.cli.main` unchanged.

Progress goes to stderr as one rewritten line on a terminal, else as JSON lines on stdout every
`PROGRESS_EVERY_S`; the report (differences per table) is one JSON line on stdout at the end.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO

from pydantic import ValidationError

from agents.replay.runner import PHASE_FOLD, ProgressSample, replay
from agents.replay.views import VIEWS
from streams.cli import EXIT_INTERRUPTED, EXIT_OK, EXIT_SERVICE, EXIT_USAGE
from streams.cli import main as cli_main
from streams.cli.arguments import parse
from streams.cli.errors import UsageError
from streams.cli.output import Output
from streams.errors import ConfigurationError, ServiceUnavailableError
from streams.kafka.codec import wire_codec
from streams.settings import ReplayProcessSettings

__all__ = ["main", "run_replay"]

PROGRESS_EVERY_S = 1.0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if command_of(args) != "replay":
        return cli_main(args)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    try:
        return asyncio.run(run_replay(args))
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: the live view is untouched\n")
        return EXIT_INTERRUPTED


def command_of(args: Sequence[str]) -> str | None:
    """The subcommand named in `args` (after the global `--prefix`), None before an option such
    as `--help`: that one `streams.cli` answers, for every command."""
    position = 0
    while position < len(args):
        arg = args[position]
        if arg == "--prefix":
            position += 2
        elif arg.startswith("--prefix="):
            position += 1
        else:
            return None if arg.startswith("-") else arg
    return None


def progress_printer(
    out: TextIO, err: TextIO, terminal: bool, clock: Callable[[], float] = time.monotonic
) -> Callable[[ProgressSample], None]:
    output = Output(out, err)
    last = [float("-inf")]

    def show(sample: ProgressSample) -> None:
        now = clock()
        if terminal:
            what = sample.view if sample.phase == PHASE_FOLD else f"{sample.view} ({sample.phase})"
            err.write(
                f"\r{what}: {sample.records:,} records, "
                f"{sample.records_per_s:,.0f}/s, lag {sample.lag:,}   "
            )
            err.flush()
        elif now - last[0] >= PROGRESS_EVERY_S or sample.lag == 0:
            output.record({"progress": sample.as_json()})
        last[0] = now

    return show


async def run_replay(
    argv: Sequence[str],
    settings: ReplayProcessSettings | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    output = Output(out, err)
    try:
        args = parse(argv)
        root = settings if settings is not None else ReplayProcessSettings()
        if args.prefix is not None:
            root = root.model_copy(update={"topic_prefix": args.prefix})
        view = VIEWS[args.view]
        if args.since is not None and not view.resumable:
            raise UsageError(f"{view.name} is replayed from the beginning only")
        codec = await wire_codec(root)
        show = progress_printer(out, err, err.isatty())
        report = await replay(view, root, codec, show, since=args.since, dry_run=args.dry_run)
    except ValidationError as exc:
        output.note(f"error: invalid TRIBUTARY_* settings: {exc}")
        return EXIT_USAGE
    except (UsageError, ConfigurationError) as exc:
        output.note(f"error: {exc}")
        return EXIT_USAGE
    except ServiceUnavailableError as exc:
        output.note(
            f"error: {exc.service} is unavailable: {exc.detail}; the live view is untouched"
        )
        return EXIT_SERVICE
    if err.isatty():
        err.write("\n")
    output.record({"report": report.as_json()})
    return EXIT_OK
