"""`python -m agents`: run the Faust worker with settings from the `TRIBUTARY_*` environment."""

from __future__ import annotations

from collections.abc import Callable

from agents.worker.process import run
from streams.settings import WorkerProcessSettings


def main(start: Callable[[WorkerProcessSettings], None] = run) -> None:
    """Build the worker's root once and start the worker with it (`start`, for tests)."""
    start(WorkerProcessSettings())


if __name__ == "__main__":
    main()
