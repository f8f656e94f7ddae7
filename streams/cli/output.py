"""Where a command writes: JSON lines for programs on stdout, sentences for people on stderr."""

from __future__ import annotations

import json
from typing import Any, TextIO


class Output:
    """One JSON object per line, flushed at once, so `tail --follow | jq` shows records live."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self._out = out
        self._err = err

    def record(self, value: dict[str, Any]) -> None:
        self._out.write(json.dumps(value, ensure_ascii=False) + "\n")
        self._out.flush()

    def note(self, message: str) -> None:
        self._err.write(message.rstrip("\n") + "\n")
        self._err.flush()
