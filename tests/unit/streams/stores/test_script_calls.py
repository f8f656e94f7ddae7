"""Concurrent script calls share one pipeline, and each caller still gets its own answer."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError, NoScriptError, ResponseError

from streams.stores.script_calls import ScriptCalls


class FakeScript:
    def __init__(self, sha: str) -> None:
        self.sha = sha
        self.script = f"-- {sha}"


class FakePipeline:
    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis
        self.commands: list[tuple[Any, ...]] = []

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> None:
        self.commands.append((sha, numkeys, *keys_and_args))

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        assert not raise_on_error
        self.redis.pipelines.append(self.commands)
        self.redis.sent.set()
        await self.redis.gate.wait()
        if self.redis.fail is not None:
            raise self.redis.fail
        return [self.redis.answer(command) for command in self.commands]


class FakeRedis:
    """Answers `evalsha` with the keys and args it was given; scripts must be loaded first."""

    def __init__(self, loaded: set[str]) -> None:
        self.loaded = loaded
        self.pipelines: list[list[tuple[Any, ...]]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.sent = asyncio.Event()
        self.fail: Exception | None = None

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        assert not transaction
        return FakePipeline(self)

    async def script_load(self, script: str) -> str:
        self.loaded.add(script.removeprefix("-- "))
        return script

    def answer(self, command: tuple[Any, ...]) -> Any:
        sha, _, *rest = command
        if sha not in self.loaded:
            return NoScriptError("No matching script")
        if "bad" in rest:
            return ResponseError("ERR in script")
        return (sha, *rest)


def _calls(redis: FakeRedis) -> ScriptCalls:
    return ScriptCalls(cast(Redis, redis))


def _script(sha: str) -> AsyncScript:
    return cast(AsyncScript, FakeScript(sha))


async def test_calls_made_together_go_out_in_one_pipeline_each_with_its_own_answer() -> None:
    redis = FakeRedis({"limit", "claim"})
    calls = _calls(redis)
    answers = await asyncio.gather(
        calls.run(_script("limit"), ["k1"], [1, 2]),
        calls.run(_script("claim"), ["k2"], ["token"]),
        calls.run(_script("limit"), ["k3"], []),
    )
    assert answers == [("limit", "k1", 1, 2), ("claim", "k2", "token"), ("limit", "k3")]
    assert redis.pipelines == [
        [("limit", 1, "k1", 1, 2), ("claim", 1, "k2", "token"), ("limit", 1, "k3")]
    ]


async def test_calls_made_while_a_pipeline_is_out_make_the_next_one() -> None:
    redis = FakeRedis({"limit"})
    redis.gate.clear()
    calls = _calls(redis)
    first = asyncio.ensure_future(calls.run(_script("limit"), ["a"], []))
    await redis.sent.wait()
    later = [asyncio.ensure_future(calls.run(_script("limit"), [k], [])) for k in ("b", "c")]
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(redis.pipelines) == 1  # one in flight: b and c wait for it
    redis.gate.set()
    assert await first == ("limit", "a")
    assert [await call for call in later] == [("limit", "b"), ("limit", "c")]
    assert [[c[2] for c in pipeline] for pipeline in redis.pipelines] == [["a"], ["b", "c"]]


async def test_scripts_redis_does_not_know_are_loaded_and_those_calls_sent_again() -> None:
    redis = FakeRedis({"limit"})
    calls = _calls(redis)
    answers = await asyncio.gather(
        calls.run(_script("limit"), ["a"], []), calls.run(_script("claim"), ["b"], [])
    )
    assert answers == [("limit", "a"), ("claim", "b")]
    assert redis.pipelines[1] == [("claim", 1, "b")]
    assert "claim" in redis.loaded


async def test_a_script_error_fails_its_own_call_only() -> None:
    calls = _calls(FakeRedis({"limit"}))
    bad, good = await asyncio.gather(
        calls.run(_script("limit"), ["a"], ["bad"]),
        calls.run(_script("limit"), ["b"], []),
        return_exceptions=True,
    )
    assert isinstance(bad, ResponseError)
    assert good == ("limit", "b")


async def test_a_lost_connection_fails_every_call_of_the_pipeline_and_the_next_works() -> None:
    redis = FakeRedis({"limit"})
    redis.fail = ConnectionError("connection reset")
    calls = _calls(redis)
    failed = await asyncio.gather(
        calls.run(_script("limit"), ["a"], []),
        calls.run(_script("limit"), ["b"], []),
        return_exceptions=True,
    )
    assert all(isinstance(outcome, ConnectionError) for outcome in failed)
    redis.fail = None
    assert await calls.run(_script("limit"), ["c"], []) == ("limit", "c")


async def test_a_cancelled_caller_leaves_the_others_their_answers() -> None:
    redis = FakeRedis({"limit"})
    redis.gate.clear()
    calls = _calls(redis)
    cancelled = asyncio.ensure_future(calls.run(_script("limit"), ["a"], []))
    kept = asyncio.ensure_future(calls.run(_script("limit"), ["b"], []))
    await redis.sent.wait()
    cancelled.cancel()
    redis.gate.set()
    assert await kept == ("limit", "b")
    with pytest.raises(asyncio.CancelledError):
        await cancelled


async def test_a_pipeline_not_answered_within_the_timeout_fails_its_calls_and_the_next_works() -> (
    None
):
    """One timer bounds the whole round trip (the client reads the replies without one each)."""
    redis = FakeRedis({"limit"})
    redis.gate.clear()
    calls = ScriptCalls(cast(Redis, redis), timeout_s=0.05)
    failed = await asyncio.gather(
        calls.run(_script("limit"), ["a"], []),
        calls.run(_script("limit"), ["b"], []),
        return_exceptions=True,
    )
    assert [type(outcome) for outcome in failed] == [TimeoutError, TimeoutError]
    redis.gate.set()
    assert await calls.run(_script("limit"), ["c"], []) == ("limit", "c")
