"""The template sandbox (errors name the part and line), the catalogue's choice of the active
version, and the template files as first versions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from babel import Locale

from schemas.templates import TEMPLATE_SAVED, TemplateEvent, TemplateVersion
from streams.templates.catalog import TemplateCatalog, render_version
from streams.templates.files import first_versions, sample_for
from streams.templates.sandbox import Sandbox, TemplateSourceError

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
EN = Locale.parse("en")


def version(
    number: int,
    *,
    locale: str = "en",
    channel: str | None = None,
    active: bool = False,
    body: str = "Hello {{ name }}",
    subject: str | None = "Hi",
    name: str = "welcome",
) -> TemplateVersion:
    return TemplateVersion.model_validate(
        {
            "name": name,
            "channel": channel,
            "locale": locale,
            "version": number,
            "subject": subject,
            "body": body,
            "active": active,
            "sample": {"name": "Ada"},
        }
    )


def saved(v: TemplateVersion, at: datetime = T0) -> TemplateEvent:
    return TemplateEvent(
        event_id=uuid.uuid4(),
        event_type=TEMPLATE_SAVED,
        occurred_at=at,
        ingested_at=at,
        source="test",
        correlation_id="c",
        payload=v,
    )


def catalog(*events: TemplateEvent) -> TemplateCatalog:
    folded = TemplateCatalog()
    for event in events:
        folded.apply(event)
    return folded


@pytest.mark.parametrize(
    ("source", "line", "message"),
    [
        ("Hello\n{{ name }}", 2, "'name' is undefined"),
        ("Hello\n\n{% if %}", 3, "TemplateSyntaxError"),
        ("a\nb\n{{ 1 / 0 }}", 3, "ZeroDivisionError"),
        ("{{ ''.__class__.__mro__ }}", 1, "SecurityError"),
    ],
)
def test_errors_name_the_part_and_line(source: str, line: int, message: str) -> None:
    with pytest.raises(TemplateSourceError, match=message) as caught:
        Sandbox().render("body", source, {}, EN)
    assert (caught.value.part, caught.value.line) == ("body", line)


def test_a_source_is_compiled_once() -> None:
    sandbox = Sandbox()
    assert sandbox.compile("body", "x {{ a }}") is sandbox.compile("subject", "x {{ a }}")


def test_the_subject_goes_only_to_channels_that_have_one_and_an_empty_body_fails() -> None:
    sandbox = Sandbox()
    v = version(1)
    assert render_version(sandbox, v, "email", {"name": "Ada"}, EN).subject == "Hi"
    assert render_version(sandbox, v, "sms", {"name": "Ada"}, EN).subject is None
    with pytest.raises(TemplateSourceError, match="empty body"):
        render_version(sandbox, version(1, body="{% if false %}x{% endif %}"), "sms", {}, EN)


def test_the_latest_record_of_a_version_is_its_state() -> None:
    folded = catalog(saved(version(1)), saved(version(2)), saved(version(1, active=True)))
    assert [v.version for v in folded.active("welcome")] == [1]
    assert folded.next_version("welcome") == 3
    assert folded.next_version("unknown") == 1
    assert folded.get("welcome", 2) == version(2)


def test_one_active_version_per_locale_and_channel_the_last_activated_winning() -> None:
    folded = catalog(
        saved(version(1, active=True), T0),
        saved(version(2, active=True), T0 + timedelta(seconds=1)),  # its replaced one not yet off
        saved(version(3, channel="sms", active=True)),
        saved(version(4, locale="fr", active=True)),
    )
    assert [v.version for v in folded.active("welcome")] == [2, 3, 4]
    assert folded.active_in("welcome", "en", None) == version(2, active=True)


def test_a_message_takes_its_channels_version_else_the_generic_one_along_the_locale_chain() -> None:
    folded = catalog(
        saved(version(1, active=True)),
        saved(version(2, channel="sms", active=True)),
        saved(version(3, locale="fr", active=True)),
        saved(version(4, locale="fr", channel="sms")),  # inactive: not used
    )
    assert folded.for_message("welcome", "en-GB", "sms", "en") == version(
        2, channel="sms", active=True
    )
    assert folded.for_message("welcome", "fr-CA", "sms", "en") == version(
        3, locale="fr", active=True
    )
    assert folded.for_message("welcome", "de", "email", "en") == version(1, active=True)
    assert folded.for_message("welcome", "de", "email", "it") is None
    assert folded.for_message("other", "en", "email", "en") is None


def test_the_files_are_one_active_version_per_locale_and_channel(tmp_path: Path) -> None:
    files = {
        "note.en.subject.j2": "About {{ order_id }}",
        "note.en.body.j2": "Long text {{ order_id }} {{ total_minor|money(currency) }}",
        "note.en.sms.j2": "Short {{ order_id }}",
        "note.en.push.j2": "Push {{ mystery }}",
        "note.fr.body.j2": "Texte",
        "README.txt": "not a template",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    versions = first_versions(tmp_path)
    assert [(v.version, v.locale, v.channel) for v in versions] == [
        (1, "en", None),
        (2, "en", "push"),
        (3, "en", "sms"),
        (4, "fr", None),
    ]
    assert all(v.active for v in versions)
    generic, push, sms, french = versions
    assert generic.sample == {"currency": "EUR", "order_id": "ord_1001", "total_minor": "4200"}
    assert (push.subject, push.sample) == (
        "About {{ order_id }}",
        {"mystery": "<mystery>", "order_id": "ord_1001"},
    )
    assert (sms.subject, sms.sample) == (None, {"order_id": "ord_1001"})
    assert (french.subject, french.sample) == (None, {})


def test_a_sample_of_a_broken_source_is_what_the_rest_needs() -> None:
    assert sample_for("{{ ip }}", "{% if %}", None) == {"ip": "203.0.113.7"}
