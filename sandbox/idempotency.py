"""Idempotency keys as providers that support them honour them: a send repeated with a key the
sandbox has already answered is not sent again; it gets the first answer back.

The headers are `Idempotency-Key` (the common convention) and Twilio's own
`I-Twilio-Idempotency-Token`. Only accepted sends are remembered (an answer that failed may be
retried under the same key and then succeed, as with real providers). The sandbox counts the
repeats a key absorbed (`replayed`); `Sandbox` counts, separately, the sends it accepted for a
notification it had already accepted (`duplicates`): what a chaos run reads to tell the
duplicates the pipeline caused from those a key absorbed.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from aiohttp import web

HEADERS = ("Idempotency-Key", "I-Twilio-Idempotency-Token")


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...]

    def response(self) -> web.Response:
        answer = web.Response(status=self.status, body=self.body, content_type=self.content_type)
        for name, value in self.headers:
            answer.headers[name] = value
        return answer


class IdempotentAnswers:
    """The answers to accepted sends by (provider, key), the most recent `max_keys` of them."""

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self.replayed = 0
        self._answers: OrderedDict[tuple[str, str], StoredAnswer] = OrderedDict()

    def replay(self, provider: str, key: str | None) -> web.Response | None:
        if key is None:
            return None
        stored = self._answers.get((provider, key))
        if stored is None:
            return None
        self.replayed += 1
        return stored.response()

    def remember(self, provider: str, key: str | None, answer: web.Response) -> None:
        if key is None or answer.status >= 300:
            return
        kept = tuple(
            (name, value) for name, value in answer.headers.items() if name.startswith("X-")
        )
        body = answer.body if isinstance(answer.body, bytes) else b""
        self._answers[(provider, key)] = StoredAnswer(
            answer.status, body, answer.content_type, kept
        )
        if len(self._answers) > self.max_keys:
            self._answers.popitem(last=False)


def idempotency_key(request: web.Request) -> str | None:
    for name in HEADERS:
        value = request.headers.get(name)
        if value:
            return value
    return None
