"""The command line's grammar (argparse: the standard library is enough for six commands)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import datetime
from typing import NoReturn

from streams.api_keys import SCOPES, Scope, parse_scopes
from streams.cli.errors import UsageError

DESCRIPTION = (
    "Operate Tributary's topics: list, create and describe them, produce validated events, "
    "tail them as JSON lines, list and re-drive dead letters, query the workers' live tables, "
    "trace one causing event's flow, rebuild a PostgreSQL view by replaying its topic, "
    "count the delivery statistics again from the rows. "
    "Settings come from TRIBUTARY_* "
    "environment variables. JSON lines go to stdout, messages to stderr. Exit codes: 0 ok, "
    "1 a service (Kafka, the Schema Registry) is unavailable, 2 usage or validation error."
)


class Parser(argparse.ArgumentParser):
    """Usage errors are raised, not printed-and-exited, so `run` reports them like the rest."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def build_parser() -> Parser:
    parser = Parser(prog="tributary", description=DESCRIPTION)
    parser.add_argument(
        "--prefix", help="topic prefix, instead of TRIBUTARY_TOPIC_PREFIX (tests, tenants)"
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    topics = commands.add_parser("topics", help="the catalog's topics in the cluster")
    topic_commands = topics.add_subparsers(dest="action", required=True, parser_class=Parser)
    topic_commands.add_parser("list", help="partitions, existence, end offsets and lag per topic")
    topic_commands.add_parser("create", help="create missing topics; exit 1 on mismatches")
    describe = topic_commands.add_parser("describe", help="one topic's partitions and configs")
    describe.add_argument("topic", help="base name (orders.events) or prefixed name")

    produce = commands.add_parser("produce", help="validate and produce events")
    produce.add_argument("event_type", help="such as order.created")
    produce.add_argument(
        "--json",
        required=True,
        metavar="FILE",
        help="a webhook body or an envelope, or JSON Lines of them; - for stdin",
    )
    produce.add_argument("--key", help="record key, instead of the contract's (the entity id)")

    tail = commands.add_parser("tail", help="print a topic's records as JSON lines")
    tail.add_argument("topic", help="base name (orders.events) or prefixed name")
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest record")
    tail.add_argument("--follow", action="store_true", help="keep printing new records")
    tail.add_argument("--max", type=_positive_int, dest="max_records", help="stop after N")
    tail.add_argument(
        "--timeout-s", type=_positive_float, help="stop once no record came for this long"
    )

    dlq = commands.add_parser("dlq", help="a family topic's dead letters")
    dlq_commands = dlq.add_subparsers(dest="action", required=True, parser_class=Parser)
    dlq_list = dlq_commands.add_parser("list", help="every dead letter with its error and source")
    dlq_list.add_argument("topic", help="the family topic, such as orders.events")
    redrive = dlq_commands.add_parser("redrive", help="re-produce dead letters to their topic")
    redrive.add_argument("topic", help="the family topic, such as orders.events")
    which = redrive.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every dead letter not re-driven before")
    which.add_argument(
        "--offset",
        action="append",
        default=[],
        metavar="PARTITION:OFFSET",
        help="this dead letter (repeatable), even if it was re-driven before",
    )
    trace = commands.add_parser(
        "trace", help="the flow of one causing event across topics and views, in time order"
    )
    trace.add_argument(
        "correlation_id", help="the causing event's correlation id (or its event id)"
    )
    trace.add_argument(
        "--no-views", action="store_true", help="topics only, without reading PostgreSQL"
    )
    tables = commands.add_parser("tables", help="the worker's live tables (operator token)")
    tables.add_argument("--worker-url", help="any worker's web URL; default the configured one")
    table_commands = tables.add_subparsers(dest="action", parser_class=Parser)
    table_list = table_commands.add_parser("list", help="every table (the default)")
    table_get = table_commands.add_parser("get", help="one key's entry, from its owner")
    table_get.add_argument("table", help="table name, such as orders")
    table_get.add_argument("key", help="the key, such as an order id")
    for each in (table_list, table_get):
        each.add_argument("--worker-url", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    replay = commands.add_parser(
        "replay", help="rebuild a PostgreSQL view from its topic, then swap it in"
    )
    replay.add_argument("view", choices=REPLAY_VIEWS, help="the view to rebuild")
    replay.add_argument(
        "--since",
        type=_moment,
        metavar="TIME",
        help="read from this RFC 3339 time on, over a copy of the live view (orders only)",
    )
    replay.add_argument(
        "--dry-run", action="store_true", help="report the differences, swap nothing in"
    )
    _add_keys(commands)
    _add_stats(commands)
    return parser


REPLAY_VIEWS = ("orders", "deliveries", "sessions")


def _moment(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be an RFC 3339 date-time") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("must carry a UTC offset")
    return value


def _scopes(text: str) -> frozenset[Scope]:
    try:
        return parse_scopes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_keys(commands: argparse._SubParsersAction[Parser]) -> None:
    keys = commands.add_parser("keys", help="the API's keys (PostgreSQL)")
    key_commands = keys.add_subparsers(dest="action", required=True, parser_class=Parser)
    create = key_commands.add_parser("create", help="a new key, printed once as JSON")
    create.add_argument("--name", required=True, help="who or what the key is for")
    create.add_argument(
        "--scopes", required=True, type=_scopes, help=f"comma-separated: {', '.join(SCOPES)}"
    )
    create.add_argument("--rate-per-s", type=_positive_float, help="GCRA rate (with --burst)")
    create.add_argument("--burst", type=_positive_int, help="GCRA burst (with --rate-per-s)")
    create.add_argument("--daily-quota", type=_positive_int, help="requests per UTC day")
    key_commands.add_parser("list", help="every key, without secrets")
    revoke = key_commands.add_parser("revoke", help="refuse a key from now on")
    revoke.add_argument("key_id", metavar="ID", help="the key's id (as `keys list` shows it)")


def _add_stats(commands: argparse._SubParsersAction[Parser]) -> None:
    stats = commands.add_parser("stats", help="the delivery statistics' rollups (PostgreSQL)")
    stats_commands = stats.add_subparsers(dest="action", required=True, parser_class=Parser)
    rebuild = stats_commands.add_parser(
        "rebuild", help="count the rollups of a time range again from the rows"
    )
    rebuild.add_argument(
        "--since", required=True, type=_moment, metavar="TIME", help="RFC 3339, with an offset"
    )
    rebuild.add_argument("--until", type=_moment, metavar="TIME", help="RFC 3339 (default: now)")


def parse(argv: Sequence[str]) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))
