"""The pipeline tests run against the same module-scoped worker process as the agents' tests."""

from tests.integration.agents.conftest import worker, worker_settings

__all__ = ["worker", "worker_settings"]
