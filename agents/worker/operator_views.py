"""Operator views on the worker's web server: every table across workers, and one key's value.

- `GET /v1/tables`: each table with its partitions, the worker owning each (from the group's
  assignment, which every member receives) and its size in keys. Sizes are reported by each
  owner for its own partitions (`GET /v1/tables?scope=local`); the answering worker asks the
  others over HTTP and merges. A worker that does not answer leaves its partitions' sizes null
  and is named under `unreachable`.
- `GET /v1/consumer`: this worker's consumer state (flows, assignment, offsets, where its tasks
  wait), as the stall watchdog logs it.
- `GET /v1/tables/{table}/{key}`: the entry, answered by whichever worker owns the key's
  partition (Faust's router forwards the request there). A windowed table answers the key's
  stored windows, newest first, the current one marked.

All require `Authorization: Bearer <operator token>` (`streams.operator_auth`); errors are
RFC 9457 problem bodies, as the API answers. Operator views are for debugging the pipeline:
clients read orders from the API, which serves PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import faust
from faust.exceptions import SameNode
from faust.types import CollectionT
from faust.web import Request, Response, View

from agents.worker.metrics import active_partitions
from agents.worker.table_sizes import (
    is_windowed,
    local_partition_sizes,
    stored,
    table_partitions,
    windowed_entry,
)
from streams.operator_auth import OperatorAuthError, check_bearer
from streams.settings import OperatorSettings

PROBLEM_JSON = "application/problem+json"
LOCAL_SCOPE = "local"
PEER_TIMEOUT_S = 5.0
SIZES_FROM = "each owner reports its own partitions; the answering worker merges them"

# host URL -> {changelog topic -> [partitions]}, as Faust's assignor keeps it.
Distribution = dict[str, dict[str, list[int]]]
# table name -> {partition -> keys}
LocalSizes = dict[str, dict[int, int]]

TITLES = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 502: "Bad Gateway"}


def problem(view: View, status: int, detail: str, **headers: str) -> Response:
    """An RFC 9457 problem body, the error format the API answers with too."""
    body = {"type": "about:blank", "title": TITLES[status], "status": status, "detail": detail}
    return view.json(body, status=status, content_type=PROBLEM_JSON, headers=headers or None)


def refusal(view: View, request: Request, operator: OperatorSettings) -> Response | None:
    """A 401/403 problem unless the request carries the operator token."""
    try:
        check_bearer(request.headers.get("Authorization"), operator.token)
    except OperatorAuthError as exc:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        return problem(view, exc.status, exc.detail, **headers)
    return None


def local_sizes(app: faust.App) -> LocalSizes:
    actives = active_partitions(app)
    return {table.name: local_partition_sizes(table, actives) for table in app.tables.values()}


def merge_tables(
    tables: list[CollectionT],
    distribution: Distribution,
    sizes: dict[str, LocalSizes],
    default_partitions: int,
) -> list[dict[str, Any]]:
    """One entry per table: its partitions with owner and size (null when not known)."""
    merged = []
    for table in tables:
        topic = table.changelog_topic.get_topic_name()
        owners = {
            partition: url
            for url, topics in distribution.items()
            for partition in topics.get(topic, [])
        }
        rows = []
        for partition in range(table_partitions(table, default_partitions)):
            owner = owners.get(partition)
            keys = sizes.get(owner, {}).get(table.name, {}).get(partition) if owner else None
            rows.append({"partition": partition, "worker": owner, "keys": keys})
        known = [n for row in rows if isinstance(n := row["keys"], int)]
        merged.append(
            {
                "name": table.name,
                "help": table.help,
                "windowed": is_windowed(table),
                "keys": sum(known) if len(known) == len(rows) else None,
                "partitions": rows,
            }
        )
    return merged


async def peer_sizes(
    http: aiohttp.ClientSession, url: str, authorization: str
) -> LocalSizes | None:
    try:
        async with http.get(
            f"{url}/v1/tables",
            params={"scope": LOCAL_SCOPE},
            headers={"Authorization": authorization},
            timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_S),
        ) as response:
            if response.status != 200:
                return None
            body = await response.json()
    except (TimeoutError, aiohttp.ClientError, ValueError):
        return None
    return {
        name: {int(partition): int(keys) for partition, keys in partitions.items()}
        for name, partitions in body["tables"].items()
    }


async def all_sizes(
    app: faust.App, owners: list[str], authorization: str
) -> tuple[dict[str, LocalSizes], list[str]]:
    me = str(app.conf.canonical_url)
    sizes: dict[str, LocalSizes] = {me: local_sizes(app)}
    peers = [url for url in owners if url != me]
    http = app.http_client
    answers = await asyncio.gather(*(peer_sizes(http, url, authorization) for url in peers))
    unreachable = []
    for url, answer in zip(peers, answers, strict=True):
        if answer is None:
            unreachable.append(url)
        else:
            sizes[url] = answer
    return sizes, unreachable


def register_table_list(
    app: faust.App, operator: OperatorSettings, default_partitions: int
) -> None:
    """`default_partitions`: of a table that does not set its own (the catalog's)."""

    @app.page("/v1/tables", name="v1-tables")
    class TableList(View):
        async def get(self, request: Request) -> Response:
            refused = refusal(self, request, operator)
            if refused is not None:
                return refused
            me = str(app.conf.canonical_url)
            if request.query.get("scope") == LOCAL_SCOPE:
                return self.json({"worker": me, "tables": local_sizes(app)})
            distribution: Distribution = {
                url: {topic: list(partitions) for topic, partitions in topics.items()}
                for url, topics in app.assignor.tables_metadata().items()
            }
            sizes, unreachable = await all_sizes(
                app, sorted(distribution), request.headers["Authorization"]
            )
            tables = merge_tables(
                list(app.tables.values()), distribution, sizes, default_partitions
            )
            return self.json(
                {
                    "worker": me,
                    "workers": sorted(distribution),
                    "sizes_from": SIZES_FROM,
                    "unreachable": unreachable,
                    "tables": tables,
                }
            )


def table_key(table: CollectionT, key: str) -> Any:
    """The URL's key as the table stores it: bytes for tables keyed by raw bytes."""
    return key.encode() if table.key_type is bytes else key


def entry_body(table: CollectionT, key: str, worker: str) -> dict[str, Any] | None:
    """The key's entry as the owner holds it; `worker` (the owner's URL) shows where it came
    from, since any worker may be asked."""
    stored_key = table_key(table, key)
    found: dict[str, Any] = {"table": table.name, "key": key, "worker": worker}
    if is_windowed(table):
        windows = windowed_entry(table, stored_key)
        return None if windows is None else {**found, "windows": windows}
    value = stored(table).get(stored_key)
    return None if value is None else {**found, "value": value}


def register_table_entry(app: faust.App, operator: OperatorSettings) -> None:
    @app.page("/v1/tables/{table}/{key}", name="v1-table-entry")
    class TableEntry(View):
        async def get(self, request: Request, table: str, key: str) -> Response:
            refused = refusal(self, request, operator)
            if refused is not None:
                return refused
            found = app.tables.get(table)
            if found is None:
                return problem(self, 404, f"there is no table {table!r}")
            try:
                # Answers from the owner of the key's partition; raises SameNode if that is us.
                return await app.router.route_req(found.name, key, self.web, request)
            except SameNode:
                pass
            body = entry_body(found, key, str(app.conf.canonical_url))
            if body is None:
                return problem(self, 404, f"table {table!r} has no entry for key {key!r}")
            return self.json(body)


def register_consumer_view(
    app: faust.App, operator: OperatorSettings, describe: Callable[[], Awaitable[str]]
) -> None:
    """`GET /v1/consumer`: what this worker's consumer is doing (`streams.runtime.consumer_state`),
    one
    fact per line; the first thing to read about a worker that processes nothing."""

    @app.page("/v1/consumer", name="v1-consumer")
    class ConsumerState(View):
        async def get(self, request: Request) -> Response:
            refused = refusal(self, request, operator)
            if refused is not None:
                return refused
            try:
                state = await describe()
            except Exception as exc:  # noqa: BLE001 - the broker's end offsets, unanswered
                return problem(self, 502, f"end offsets unavailable: {exc!r}")
            worker = str(app.conf.canonical_url)
            return self.json({"worker": worker, "state": state.splitlines()})


def register_operator_views(
    app: faust.App,
    operator: OperatorSettings,
    default_partitions: int,
    describe_consumer: Callable[[], Awaitable[str]],
) -> None:
    register_table_list(app, operator, default_partitions)
    register_table_entry(app, operator)
    register_consumer_view(app, operator, describe_consumer)
