"""materialize_preferences: the fold of users events into preference rows, a batch at a time,
with a fake table of rows."""

from __future__ import annotations

from collections.abc import Sequence

from agents.preferences.fold import fold_preferences
from agents.preferences.pipeline import PreferencesMaterializer, fold_batch
from agents.retry import Backoff
from schemas.preferences import PreferencesView
from schemas.users import UserEvent
from streams.errors import PoisonError, ServiceUnavailableError
from streams.kafka.wire import decode, encode
from streams.runtime import SourceRecord
from tests.unit.agents.batch_fakes import ScopeAndSleep
from tests.unit.agents.notification_factories import NOON, USER, user_created, user_event

SWITCHED = {"marketing": {"email": False}}


def prefs(categories: object = SWITCHED, **more: object) -> UserEvent:
    return user_event("user.preferences-updated", categories=categories, **more)


def test_the_fold_keeps_what_preferences_are_made_of() -> None:
    view = fold_preferences(None, user_created(), 3, NOON)
    assert view == PreferencesView(
        user_id=USER, time_zone="Europe/Paris", locale="fr-FR", revision=3, updated_at=NOON
    )
    event = prefs(quiet_hours={"start": "22:00", "end": "07:00"})
    view = fold_preferences(view, event, 4, NOON)
    assert view is not None
    assert view.categories is not None
    assert view.categories.marketing is not None
    assert view.categories.marketing.email is False
    assert (view.event_id, view.locale, view.revision) == (event.event_id, "fr-FR", 4)
    view = fold_preferences(view, user_event("user.updated", locale="de"), 5, NOON)
    assert view is not None
    assert (view.locale, view.time_zone, view.event_id) == ("de", "Europe/Paris", event.event_id)
    unchanged = fold_preferences(view, user_event("user.verified"), 6, NOON)
    assert unchanged == view.model_copy(update={"revision": 6})
    assert fold_preferences(view, user_event("user.deleted"), 7, NOON) is None


def test_a_batch_gives_one_row_per_user_and_skips_what_a_row_already_holds() -> None:
    held = PreferencesView(user_id="other", locale="en", revision=10)
    events = [
        (user_created(), 1),
        (prefs(), 2),
        (user_event("user.updated", "other", locale="fr"), 9),  # older than the row: a replay
        (user_event("user.updated", "other", time_zone="UTC"), 11),
        (user_created("gone"), 12),
        (user_event("user.deleted", "gone"), 13),
    ]
    views, deletions = fold_batch({"other": held}, events, NOON)
    by_user = {view.user_id: view for view in views}
    assert set(by_user) == {USER, "other"}
    assert by_user[USER].revision == 2
    assert (by_user["other"].locale, by_user["other"].time_zone) == ("en", "UTC")
    assert deletions == [("gone", 13)]


class FakeRows:
    def __init__(self, failures: int = 0) -> None:
        self.rows: dict[str, PreferencesView] = {}
        self.failures = failures

    async def get_many(self, user_ids: Sequence[str]) -> dict[str, PreferencesView]:
        if self.failures:
            self.failures -= 1
            raise ServiceUnavailableError("postgresql", "away")
        return {u: self.rows[u] for u in user_ids if u in self.rows}

    async def write(
        self, views: Sequence[PreferencesView], deletions: Sequence[tuple[str, int]]
    ) -> None:
        for view in views:
            self.rows[view.user_id] = view
        for user_id, _ in deletions:
            self.rows.pop(user_id, None)


def _record(offset: int, value: bytes) -> SourceRecord:
    return SourceRecord("users.events", 0, offset, USER.encode(), value)


async def test_the_materializer_reads_folds_and_writes_retrying_an_outage() -> None:
    rows = FakeRows(failures=2)
    timing = ScopeAndSleep()

    def strict_decode(raw: bytes | None) -> UserEvent:
        return decode(raw, UserEvent)

    materializer: PreferencesMaterializer[SourceRecord] = PreferencesMaterializer(
        rows, strict_decode, lambda record: record, Backoff(), sleep=timing.sleep
    )
    batch = [_record(0, encode(user_created())), _record(1, b"junk"), _record(2, encode(prefs()))]
    await materializer.process(batch)
    assert rows.rows[USER].revision == 2
    assert rows.rows[USER].categories is not None
    assert len(timing.sleeps) == materializer.stats.retries == 2
    assert (materializer.stats.undecodable, materializer.stats.rows_written) == (1, 1)
    await materializer.process([_record(3, encode(user_event("user.deleted")))])
    assert rows.rows == {}


def test_junk_is_poison() -> None:
    try:
        decode(b"junk", UserEvent)
    except PoisonError:
        return
    raise AssertionError("junk decoded")
