"""The agents' module-scoped worker fixtures, for the CLI commands that talk to a worker."""

from tests.integration.agents.conftest import producer, worker, worker_settings

__all__ = ["producer", "worker", "worker_settings"]
