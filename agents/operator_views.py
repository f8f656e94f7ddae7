"""Operator views on the worker's web server: what a table holds for a key, and agent counters.

A table is partitioned across workers; a request for a key that another worker owns is forwarded
there by Faust's `table_route`, so any worker can be asked. These views are for operators
debugging the pipeline; clients read orders from the API, which serves PostgreSQL.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import faust
from faust.types import TableT
from faust.web import Request, Response, View

from agents.order_materializer import MaterializerStats

PROBLEM_JSON = "application/problem+json"


def not_found(view: View, detail: str) -> Response:
    """An RFC 9457 problem body, the error format the API answers with too."""
    body = {"type": "about:blank", "title": "Not Found", "status": 404, "detail": detail}
    return view.json(body, status=404, content_type=PROBLEM_JSON)


def register_table_list(app: faust.App) -> None:
    @app.page("/tables/", name="tables")
    class TableList(View):
        async def get(self, request: Request) -> Response:
            tables = [
                {"name": each.name, "partitions": each.partitions, "help": each.help}
                for each in app.tables.values()
            ]
            return self.json({"tables": tables})


def register_table_entry(app: faust.App, table: TableT[bytes, dict[str, Any]]) -> None:
    name = table.name

    async def show_entry(view: View, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.match_info["key"]
        entry = table.get(key.encode())
        if entry is None:
            return not_found(view, f"table {name!r} has no entry for key {key!r}")
        return view.json(entry)

    # Answers here if this worker owns the key's partition, else forwards to the owner.
    routed = app.table_route(table=table, match_info="key")(show_entry)

    @app.page(f"/tables/{name}/{{key}}/", name=f"tables-{name}-entry")
    class TableEntry(View):
        async def get(self, request: Request, key: str) -> Response:
            return await routed(self, request)


def register_agent_stats(app: faust.App, agent_name: str, stats: MaterializerStats) -> None:
    @app.page(f"/agents/{agent_name}/stats/", name=f"agents-{agent_name}-stats")
    class AgentStats(View):
        async def get(self, request: Request) -> Response:
            return self.json(asdict(stats))
