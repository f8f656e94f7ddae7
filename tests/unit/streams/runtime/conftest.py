"""An app built but never started and an agent's stream on it (`agent_streams`); a module that
needs the app otherwise overrides `app`, and `stream` follows it."""

from __future__ import annotations

import pytest

from streams.runtime.app import TributaryApp
from tests.unit.streams.runtime.agent_streams import AgentStream, agent_app, agent_stream


@pytest.fixture
def app() -> TributaryApp:
    return agent_app()


@pytest.fixture
def stream(app: TributaryApp) -> AgentStream:
    return agent_stream(app)
