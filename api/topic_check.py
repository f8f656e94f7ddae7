"""At start, the API compares the topics it writes with the catalog and warns about every
difference (a missing topic, its partitions, `min.insync.replicas`, unclean leader election,
retention). It never creates or alters a topic (`tributary topics create` and the worker do), and
never delays the start: the check runs beside it, and a Kafka that is away is only noted."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from api.keys import CATALOG, SETTINGS
from streams.errors import ServiceUnavailableError
from streams.kafka.topic_admin import check_topics

log = logging.getLogger(__name__)


class StartupTopicCheck:
    """The check's task, so a test can await what it found."""

    def __init__(self) -> None:
        self.task: asyncio.Task[list[str]] | None = None


TOPIC_CHECK = web.AppKey("topic_check", StartupTopicCheck)


async def _check(app: web.Application) -> list[str]:
    try:
        return await check_topics(app[SETTINGS].kafka, app[CATALOG].families())
    except ServiceUnavailableError as exc:
        log.warning("could not compare the topics with the catalog: %s", exc)
        return []


async def topic_check_lifetime(app: web.Application) -> AsyncIterator[None]:
    app[TOPIC_CHECK].task = asyncio.create_task(_check(app))
    yield
    task = app[TOPIC_CHECK].task
    if task is not None and not task.done():
        task.cancel()
