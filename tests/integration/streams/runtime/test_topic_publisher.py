"""`TopicPublisher` on a real broker: a batch is acknowledged, each record lands on the
partition Kafka's default partitioner gives its key (as a record sent one by one does), with
its headers and a timestamp of when it was sent."""

from __future__ import annotations

import time

from streams.runtime import OutgoingRecord, TopicPublisher, create_faust_app, raw_topic
from streams.settings import Settings
from tests.integration.kafka_io import kafka_producer, records_to_end


async def test_a_batch_lands_where_single_sends_of_the_same_keys_land(settings: Settings) -> None:
    worker = settings.worker.model_copy(update={"store": "memory://", "web_port": 0})
    app = create_faust_app(settings.model_copy(update={"worker": worker}))
    batched = f"{settings.topic_prefix}notifications.status"
    single = f"{settings.topic_prefix}notifications.dispatch"
    keys = [f"n-{n}".encode() for n in range(60)]
    sent_at_ms = int(time.time() * 1000)
    await app.producer.start()
    try:
        publisher = TopicPublisher(raw_topic(app, batched))
        await publisher.send_all([OutgoingRecord(key, b"v-" + key, (("n", key),)) for key in keys])
    finally:
        await app.producer.stop()
    async with kafka_producer(settings) as producer:
        for key in keys:
            await producer.send_and_wait(single, key=key, value=b"v-" + key)

    published = await records_to_end(settings, batched)
    reference = {r.key: r.partition for r in await records_to_end(settings, single)}
    assert {r.key: r.partition for r in published} == reference
    assert len(set(reference.values())) > 1  # the keys do spread over partitions
    assert all(r.value == b"v-" + r.key and r.headers == (("n", r.key),) for r in published)
    assert all(r.timestamp >= sent_at_ms - 1000 for r in published)
