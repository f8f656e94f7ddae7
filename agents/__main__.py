"""`python -m agents`: run the Faust worker with settings from the `TRIBUTARY_*` environment."""

from __future__ import annotations

from agents.worker.process import run
from streams.settings import Settings


def main() -> None:
    run(Settings())


if __name__ == "__main__":
    main()
