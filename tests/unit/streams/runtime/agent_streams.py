"""An agent's stream as `take_batches` reads it, on a Faust app that is built but never started:
the queue is filled here as the conductor fills it, with the events it makes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from faust.types.tuples import ConsumerMessage

from streams.runtime.app import TributaryApp, create_faust_app
from streams.runtime.event_batches import EventBatch, take_batches
from streams.settings import WorkerProcessSettings

TOPIC = "p-orders.events"
GENERATION = 3
AGENT = "materialize_orders"


@dataclass
class RecordingSensor:
    skips: list[tuple[str, int]] = field(default_factory=list)
    acks: list[tuple[str, int, float]] = field(default_factory=list)

    def skipped(self, agent: str, events: int) -> None:
        self.skips.append((agent, events))

    def acknowledged(self, agent: str, events: int, held_s: float) -> None:
        self.acks.append((agent, events, held_s))


@dataclass
class AgentStream:
    """What `take_batches` reads of the stream Faust gives an agent."""

    app: TributaryApp
    channel: Any
    prefix: str = AGENT
    shortlabel: str = f"Stream: {TOPIC}"


def agent_app(**worker: Any) -> TributaryApp:
    """An app whose consumer is in generation `GENERATION` with its flow on, reading `TOPIC`."""
    settings = WorkerProcessSettings.model_validate({"worker": {"web_port": 6140, **worker}})
    app = create_faust_app(settings)
    app.consumer_generation_id = GENERATION
    app.flow_control.resume()
    # The conductor marks the topics agents read as acknowledged by them when it subscribes.
    app.topics._acking_topics.add(TOPIC)
    app.batch_sensor = RecordingSensor()
    return app


def agent_stream(app: TributaryApp) -> AgentStream:
    return AgentStream(app, aiter(app.channel()))  # an iterated channel: the queue it reads


def sensor(app: TributaryApp) -> RecordingSensor:
    assert isinstance(app.batch_sensor, RecordingSensor)
    return app.batch_sensor


def put(
    stream: AgentStream, *offsets: int, generation: int = GENERATION, topic: str = TOPIC
) -> None:
    for offset in offsets:
        message = ConsumerMessage(
            topic, 0, offset, 0.0, 0, None, b"k", b"v", None, generation_id=generation
        )
        stream.channel.queue.put_nowait(stream.app.create_event(b"k", b"v", None, message))


def batches(stream: AgentStream, max_events: int, within_s: float) -> AsyncIterator[EventBatch]:
    return take_batches(stream, max_events, within_s)  # type: ignore[arg-type]
