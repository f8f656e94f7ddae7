"""Redis script calls of concurrent requests, sent to Redis together in one pipeline.

redis-py's asyncio client spends about 90 µs of CPU on one script call (packing, the connection
pool, timeouts, parsing: `scripts/bench_ingest_stages.py`), more than the rest of a webhook's own
work in the API together; in a pipeline of 32 calls one costs about 21 µs. Under load many
requests reach their rate limit or ledger call at the same moment, so `ScriptCalls.run` queues
the call and whatever is queued when the event loop next comes round goes out as one pipeline:
one pipeline in flight per store, the calls queued meanwhile make the next. Each caller still
awaits its own answer, so no request goes on before Redis answered it, and a script runs
atomically as before (a pipeline only saves round trips; it is not a transaction).

Given `timeout_s`, one timer bounds each pipeline's round trip (and the loading of scripts Redis
lost) as a whole, so its client can read the replies without one timer each: redis-py arms and
cancels an `asyncio.timeout` per reply when the client has a `socket_timeout`, about 40 % of a
pipelined call's CPU (31.9-36.8 against 53.7-62.1 µs per call in pipelines of 8). Cancelled
mid-pipeline, redis-py closes the connection, so no late reply is read as another's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError


@dataclass(frozen=True, slots=True)
class _Call:
    script: AsyncScript
    keys: tuple[str, ...]
    args: tuple[Any, ...]
    answer: asyncio.Future[Any]


class ScriptCalls:
    """Runs registered scripts on `client`, concurrent calls batched; see the module doc."""

    def __init__(self, client: Redis, *, timeout_s: float | None = None) -> None:
        """`timeout_s`: the most one pipeline may take (`TimeoutError` to its callers); None
        leaves the bound to the client's own `socket_timeout`, applied to every reply."""
        self._client = client
        self._timeout_s = timeout_s
        self._queued: list[_Call] = []
        self._sending = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """The script's reply; raises what the call alone would (a `RedisError`, `OSError`)."""
        loop = asyncio.get_running_loop()
        call = _Call(script, tuple(keys), tuple(args), loop.create_future())
        self._queued.append(call)
        if len(self._queued) == 1 and not self._sending:
            loop.call_soon(self._start)  # after the calls other requests make in this turn
        return await call.answer

    def _start(self) -> None:
        if self._sending or not self._queued:
            return
        calls, self._queued = self._queued, []
        self._sending = True
        task = asyncio.ensure_future(self._send(calls))
        self._tasks.add(task)  # a reference, so the task is not collected while it runs
        task.add_done_callback(self._tasks.discard)

    async def _send(self, calls: list[_Call]) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                answers = await self._answers(calls)
            for call, answer in zip(calls, answers, strict=True):
                _settle(call.answer, answer)
        except asyncio.CancelledError:
            for call in calls:
                call.answer.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - every caller gets the failure to translate
            for call in calls:
                _settle(call.answer, exc)
        finally:
            self._sending = False
            if self._queued:
                self._start()

    async def _answers(self, calls: list[_Call]) -> list[Any]:
        answers = await self._pipeline(calls)
        unknown = [n for n, answer in enumerate(answers) if isinstance(answer, NoScriptError)]
        if unknown:  # Redis restarted or flushed its scripts: load them, send those again
            for script in {calls[n].script for n in unknown}:
                await self._client.script_load(script.script)
            again = await self._pipeline([calls[n] for n in unknown])
            for n, answer in zip(unknown, again, strict=True):
                answers[n] = answer
        return answers

    async def _pipeline(self, calls: Sequence[_Call]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for call in calls:
            pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
        answers: list[Any] = await pipe.execute(raise_on_error=False)
        return answers


def _settle(answer: asyncio.Future[Any], outcome: Any) -> None:
    if answer.done():  # its caller was cancelled
        return
    if isinstance(outcome, BaseException):
        answer.set_exception(outcome)
    else:
        answer.set_result(outcome)
