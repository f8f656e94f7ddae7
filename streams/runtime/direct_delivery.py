"""The consumer's callback without the conductor's lock and coroutine per record.

faust-streaming 0.15's `Conductor.on_message` is a coroutine that takes the conductor's
`_tp_to_callback_lock` for every record, looks up the handler compiled for the record's
partition (Cython's `ConductorHandler`: flow control, decoding, the channels' queues) and awaits
it. The lock is held only while `_update_indices` rebuilds the handlers (a resubscription); the
rest of the time every record pays for an `asyncio.Lock` round and a coroutine of its own
(py-spy, 400 notifications/s: the lock's enter alone 0.6 % of a worker's samples).

`direct_delivery` returns the partition's handler's own coroutine when the lock is free: the
check and the lookup happen with no await in between, so no rebuild can be half done then.
While the lock is held the record goes through Faust's `on_message`, which waits for it. A
partition without a handler raises `KeyError`, as Faust's lookup does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Delivery = Callable[[Any], Awaitable[None]]


def direct_delivery(conductor: Any) -> Delivery:
    """The callback for `conductor`'s consumer (see the module docstring)."""
    lock = conductor._tp_to_callback_lock
    handlers = conductor._tp_to_callback
    through_lock: Delivery = conductor.on_message

    def deliver(message: Any) -> Awaitable[None]:
        if lock.locked():
            return through_lock(message)
        handler: Delivery = handlers[message.tp]
        return handler(message)

    return deliver
