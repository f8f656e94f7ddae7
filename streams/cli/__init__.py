"""`tributary`: the command line for operators and upstream integrators.

`main` is the console entry point; `run` is the same command as a coroutine with its settings
and streams passed in, which is how the tests call it in-process. Settings are read from the
environment once, at the start of a command (`--prefix` overrides the topic prefix), and passed
down. Exit codes: 0 ok, 1 a service is unavailable (the message names it), 2 usage or invalid
input (nothing was changed), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from streams.cli import dlq, keys, produce, statistics, tables, tail, topics, trace
from streams.cli.arguments import parse
from streams.cli.errors import UsageError
from streams.cli.output import Output
from streams.errors import ConfigurationError, ServiceUnavailableError, TributaryError
from streams.kafka.catalog import TopicCatalog
from streams.settings import CliProcessSettings
from streams.stores.api_key_store import ApiKeyStore
from streams.stores.delivery_store import DeliveryStore

__all__ = ["Console", "main", "run"]

EXIT_OK = 0
EXIT_SERVICE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


@dataclass(frozen=True, slots=True)
class Console:
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    try:
        return asyncio.run(run(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:
        # Ctrl-C is how `tail --follow` is meant to end: the clients are closed by now, and a
        # traceback would only bury the output. 130 is the shell's code for "ended by SIGINT".
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (`| head`): that ends the command, it is no failure.
        # Python's own advice: point stdout at devnull so the flush at exit cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


async def run(
    argv: Sequence[str],
    settings: CliProcessSettings | None = None,
    console: Console | None = None,
) -> int:
    console = console or Console()
    output = Output(console.stdout, console.stderr)
    try:
        args = parse(argv)
        settings = cli_settings(settings, args.prefix)
        return await _dispatch(args, settings, console, output)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except UsageError as exc:
        output.note(f"error: {exc}")
        return EXIT_USAGE
    except ConfigurationError as exc:
        output.note(f"configuration error: {exc}")
        return EXIT_USAGE
    except ServiceUnavailableError as exc:
        output.note(f"error: {exc.service} is unavailable: {exc.detail}")
        return EXIT_SERVICE
    except TributaryError as exc:
        output.note(f"error: {type(exc).__name__}: {exc}")
        return EXIT_SERVICE


def cli_settings(given: CliProcessSettings | None, prefix: str | None) -> CliProcessSettings:
    """The CLI's root: `given`, or built once from `TRIBUTARY_*`; `--prefix` overrides its topic
    prefix."""
    try:
        settings = given if given is not None else CliProcessSettings()
    except ValidationError as exc:
        raise UsageError(f"invalid TRIBUTARY_* settings: {exc}") from exc
    return settings if prefix is None else settings.model_copy(update={"topic_prefix": prefix})


async def _keys(args: argparse.Namespace, settings: CliProcessSettings, output: Output) -> int:
    store = ApiKeyStore.from_settings(settings.database)
    try:
        if args.action == "create":
            return await keys.create_key(
                store,
                args.name,
                args.scopes,
                output,
                rate_per_s=args.rate_per_s,
                burst=args.burst,
                daily_quota=args.daily_quota,
            )
        if args.action == "list":
            return await keys.list_keys(store, output)
        return await keys.revoke_key(store, args.key_id, output)
    finally:
        await store.close()


async def _stats(args: argparse.Namespace, settings: CliProcessSettings, output: Output) -> int:
    store = DeliveryStore.from_settings(settings.database)
    try:
        return await statistics.rebuild_statistics(store, args.since, args.until, output)
    finally:
        await store.close()


def _read_input(source: str, stdin: TextIO) -> str:
    if source == "-":
        return stdin.read()
    try:
        return Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {source}: {exc}") from exc


async def _dispatch(
    args: argparse.Namespace, settings: CliProcessSettings, console: Console, output: Output
) -> int:
    kafka, worker, operator = settings.kafka, settings.worker, settings.operator
    catalog = TopicCatalog(settings.topic_prefix, kafka, settings.dispatch.retry_delays_s)
    if args.command == "topics":
        if args.action == "list":
            return await topics.list_topics(catalog, kafka, worker, output)
        if args.action == "create":
            return await topics.create_topics(catalog, kafka, output)
        return await topics.describe_topic(catalog, kafka, worker, args.topic, output)
    if args.command == "produce":
        text = _read_input(args.json, console.stdin)
        return await produce.produce(settings, catalog, args.event_type, text, args.key, output)
    if args.command == "tail":
        options = tail.TailOptions(
            args.from_beginning, args.follow, args.max_records, args.timeout_s
        )
        return await tail.tail(settings, catalog, args.topic, options, output)
    if args.command == "keys":
        return await _keys(args, settings, output)
    if args.command == "stats":
        return await _stats(args, settings, output)
    if args.command == "trace":
        database = None if args.no_views else settings.database
        return await trace.trace_command(settings, database, catalog, args.correlation_id, output)
    if args.command == "tables":
        if args.action == "get":
            return await tables.get_entry(
                worker, operator, args.worker_url, args.table, args.key, output
            )
        return await tables.list_tables(worker, operator, args.worker_url, output)
    if args.command == "replay":
        # The folds are the worker's (`agents`), which this package may not import.
        raise UsageError("replay runs from the installed `tributary` (python -m agents.command)")
    if args.action == "list":
        return await dlq.list_dead_letters(catalog, kafka, worker, args.topic, output)
    return await dlq.redrive(catalog, kafka, worker, args.topic, args.offset, output)
