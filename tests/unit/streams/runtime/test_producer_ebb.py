"""The producer buffer's ebb, awaited by Faust's conductor before every record, checked by one
length comparison while the buffer is within its limit, and by Faust's own wait past it."""

from __future__ import annotations

from typing import Any

import pytest

from streams.runtime.app import TributaryApp
from streams.runtime.producer_ebb import lean_ebb


def pending(buffer: Any, messages: int) -> None:
    for n in range(messages):
        buffer.pending.put_nowait(f"message {n}")


async def test_a_buffer_within_its_limit_is_not_waited_for(app: TributaryApp) -> None:
    buffer = app.producer.buffer
    lean_ebb(buffer)
    await buffer.wait_until_ebb()
    pending(buffer, buffer.max_messages)
    await buffer.wait_until_ebb()


async def test_a_buffer_past_its_limit_is_flushed_as_faust_flushes_it(app: TributaryApp) -> None:
    buffer = app.producer.buffer
    lean_ebb(buffer)
    pending(buffer, buffer.max_messages + 1)
    # Faust's own wait: it flushes, which a producer that never started refuses.
    with pytest.raises(RuntimeError, match="Producer not Running"):
        await buffer.wait_until_ebb()


async def test_the_apps_producer_buffer_has_the_lean_ebb(app: TributaryApp) -> None:
    buffer = app.producer.buffer
    assert "wait_until_ebb" in vars(buffer)  # its own, not the class's method
    pending(buffer, buffer.max_messages + 1)
    with pytest.raises(RuntimeError, match="Producer not Running"):
        await buffer.wait_until_ebb()
