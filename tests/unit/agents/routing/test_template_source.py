"""The route agent's templates: read to the end before each batch, the files loaded once into
an empty topic, a record that does not decode skipped."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from agents.retry import Backoff
from agents.routing.rendering import TEMPLATE_DIR
from agents.routing.template_source import TemplateSource
from schemas.templates import TemplateEvent
from streams.errors import ServiceUnavailableError
from streams.kafka.compacted_topic import TableRecord
from streams.kafka.wire import decode, encode
from streams.runtime import OutgoingRecord
from streams.templates.live import LiveTemplates
from tests.unit.agents.batch_fakes import ScopeAndSleep
from tests.unit.fakes import FakeSink

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)


class FakeTopic:
    """A compacted topic: what is appended is read back by the next `read_to_end`."""

    def __init__(self, failures: int = 0) -> None:
        self.records: list[TableRecord] = []
        self.read = 0
        self.failures = failures

    def append(self, records: Sequence[OutgoingRecord]) -> None:
        for record in records:
            self.records.append(TableRecord(record.key, record.value, 0, len(self.records)))

    async def read_to_end(self) -> list[TableRecord]:
        if self.failures:
            self.failures -= 1
            raise ServiceUnavailableError("kafka", "away")
        new, self.read = self.records[self.read :], len(self.records)
        return new

    async def close(self) -> None:
        pass


class AppendingSink(FakeSink):
    def __init__(self, topic: FakeTopic) -> None:
        super().__init__()
        self.topic = topic

    async def send_all(self, records: Sequence[OutgoingRecord]) -> None:
        await super().send_all(records)
        self.topic.append(records)


def source(topic: FakeTopic, sink: FakeSink, timing: ScopeAndSleep) -> TemplateSource:
    return TemplateSource(
        LiveTemplates(topic),
        lambda raw: decode(raw, TemplateEvent),
        sink,
        encode,
        TEMPLATE_DIR,
        lambda: NOW,
        Backoff(),
        sleep=timing.sleep,
    )


async def test_an_empty_topic_gets_the_files_once() -> None:
    topic, timing = FakeTopic(failures=1), ScopeAndSleep()
    sink = AppendingSink(topic)
    templates = source(topic, sink, timing)
    await templates.refresh()
    await templates.refresh()
    files = {path.name.split(".")[0] for path in TEMPLATE_DIR.glob("*.j2")}
    assert set(templates.live.catalog.names()) == files
    assert len(sink.calls) == 1
    assert len(timing.sleeps) == 1  # the first read failed, and was retried
    keys = [record.key for record in sink.sent]
    assert len(keys) == len(set(keys))


async def test_a_topic_with_records_is_not_loaded_again_and_bad_records_are_skipped() -> None:
    topic, timing = FakeTopic(), ScopeAndSleep()
    first = AppendingSink(topic)
    await source(topic, first, timing).refresh()
    topic.append([OutgoingRecord(b"junk/1", b"junk")])
    topic.read = 0  # another worker: it reads from the start
    second = FakeSink()
    templates = source(topic, second, timing)
    await templates.refresh()
    assert second.calls == []
    assert templates.live.skipped == 1
    assert len(templates.live.catalog) == len(first.sent)
