"""`python -m agents`: run the Faust worker with settings from the `TRIBUTARY_*` environment."""

from __future__ import annotations

from agents.worker.process import run
from streams.settings import WorkerProcessSettings


def main() -> None:
    run(WorkerProcessSettings())


if __name__ == "__main__":
    main()
