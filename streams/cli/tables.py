"""`tributary tables`: the worker's operator views from the shell.

`tables` (or `tables list`) prints one JSON line per table, as `GET /v1/tables` lists it: name,
help, whether it is windowed, its total keys, and per partition the owning worker and its keys.
`tables get <table> <key>` prints the entry as `GET /v1/tables/{table}/{key}` answers it (from
whichever worker owns the key). Any worker of the group can be asked: `--worker-url`, default
the configured worker web address. The bearer token is `TRIBUTARY_OPERATOR_TOKEN`.

Exit codes as the other commands: 1 when the worker cannot be reached or fails (5xx), 2 when
it refuses the token (401/403), 2 as well for an unknown table or key (404, the detail printed):
nothing is wrong with the pipeline, the question named something that is not there.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp

from streams.cli.errors import UsageError
from streams.cli.output import Output
from streams.errors import ServiceUnavailableError
from streams.settings import OperatorSettings, WorkerSettings

TIMEOUT_S = 10.0
EXIT_OK = 0
EXIT_NOT_FOUND = 2


def worker_url(worker: WorkerSettings, given: str | None) -> str:
    if given:
        return given.rstrip("/")
    return f"http://{worker.web_host}:{worker.web_port}"


def auth_headers(operator: OperatorSettings) -> dict[str, str]:
    token = operator.token
    if token is None:
        raise UsageError("TRIBUTARY_OPERATOR_TOKEN is not set: the worker's table views need it")
    return {"Authorization": f"Bearer {token.get_secret_value()}"}


def entry_path(table: str, key: str) -> str:
    return f"/v1/tables/{quote(table, safe='')}/{quote(key, safe='')}"


def problem_detail(status: int, body: Any) -> str:
    if isinstance(body, dict) and body.get("detail"):
        return str(body["detail"])
    return f"HTTP {status}"


def checked(url: str, status: int, body: Any) -> Any:
    """The body of a 200; otherwise the error the exit code stands for."""
    if status == 200:
        return body
    detail = problem_detail(status, body)
    if status in (401, 403):
        raise UsageError(f"the worker refused the operator token ({status}): {detail}")
    if status == 404:
        return None
    raise ServiceUnavailableError("worker", f"{url} answered {status}: {detail}")


async def fetch(url: str, headers: dict[str, str], *, not_found: list[str]) -> Any:
    """GET `url` as JSON; a 404's detail is appended to `not_found` and None returned."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as http,
            http.get(url, headers=headers) as response,
        ):
            status = response.status
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ServiceUnavailableError("worker", f"{url}: {type(exc).__name__}: {exc}") from exc
    result = checked(url, status, body)
    if result is None:
        not_found.append(problem_detail(status, body))
    return result


async def list_tables(
    worker: WorkerSettings, operator: OperatorSettings, given_url: str | None, output: Output
) -> int:
    base = worker_url(worker, given_url)
    missing: list[str] = []
    body = await fetch(f"{base}/v1/tables", auth_headers(operator), not_found=missing)
    if body is None:
        output.note(f"error: {base} serves no table views: {missing[0]}")
        return EXIT_NOT_FOUND
    for table in body["tables"]:
        output.record(table)
    if body.get("unreachable"):
        output.note(f"sizes unknown for partitions of: {', '.join(body['unreachable'])}")
    return EXIT_OK


async def get_entry(
    worker: WorkerSettings,
    operator: OperatorSettings,
    given_url: str | None,
    table: str,
    key: str,
    output: Output,
) -> int:
    base = worker_url(worker, given_url)
    missing: list[str] = []
    body = await fetch(base + entry_path(table, key), auth_headers(operator), not_found=missing)
    if body is None:
        output.note(f"error: {missing[0]}")
        return EXIT_NOT_FOUND
    output.record(body)
    return EXIT_OK
