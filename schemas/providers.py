"""The providers' circuit breakers as records: what each worker reports of its breakers (on
`notifications.providers`, materialized into PostgreSQL for the API) and the operator's command
every worker applies (on `notifications.provider-commands`).

Both topics are internal to the pipeline (the workers and the API, one release): their values are
these models as JSON, as `analytics.partials` is, not a contract with outside consumers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

BreakerStateName = Literal["closed", "open", "half-open"]
ProviderCommandName = Literal["reset"]
MAX_ERROR_CHARS = 256


class BreakerReport(BaseModel):
    """One worker's breaker of one provider, as it was at `reported_at`.

    Keyed `<provider>/<worker>` on a compacted topic: the latest report of each pair is kept.
    A report past `expires_at` is from a worker that stopped reporting (gone): it no longer counts.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str = Field(min_length=1)
    worker: str = Field(min_length=1)
    state: BreakerStateName
    consecutive_failures: int = Field(ge=0)
    requests_in_window: int = Field(ge=0)
    # The provider's text of the last failure, without recipients (redacted before it is kept).
    last_error: str | None = Field(default=None, max_length=MAX_ERROR_CHARS)
    last_error_at: datetime | None = None
    opened_at: datetime | None = None
    times_opened: int = Field(ge=0)
    reported_at: datetime
    expires_at: datetime

    @property
    def key(self) -> bytes:
        return f"{self.provider}/{self.worker}".encode()


class ProviderCommand(BaseModel):
    """An operator's command to every worker about one provider's breaker (`reset` closes it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: UUID
    command: ProviderCommandName
    provider: str = Field(min_length=1)
    requested_at: datetime
