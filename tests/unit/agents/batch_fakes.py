"""What a batch processor is given besides its data: a per-record scope and a sleep, recorded."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from streams.runtime import SourceRecord

T = TypeVar("T")


class ScopeAndSleep:
    """`scope` notes each record's offset as it is handled; `sleep` notes the back-off delays
    instead of waiting them."""

    def __init__(self) -> None:
        self.scoped: list[int] = []
        self.sleeps: list[float] = []

    @contextmanager
    def scope(self, record: SourceRecord) -> Iterator[None]:
        self.scoped.append(record.offset)
        yield

    async def sleep(self, delay_s: float) -> None:
        self.sleeps.append(delay_s)


class ScopeStack(Generic[T]):
    """A scope that keeps what is in scope, innermost last: a fake table asks for `current` to
    note in whose scope it was read or written (in the worker, whose partition's store)."""

    def __init__(self) -> None:
        self.items: list[T] = []

    @property
    def current(self) -> T | None:
        return self.items[-1] if self.items else None

    @contextmanager
    def scope(self, item: T) -> Iterator[None]:
        self.items.append(item)
        try:
            yield
        finally:
            self.items.pop()
