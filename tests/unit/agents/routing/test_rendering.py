"""Templates: locale fallback, channel bodies, and every failure a poison error."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.routing.rendering import (
    TEMPLATE_DIR,
    RenderedMessage,
    TemplateRenderer,
    TemplateRenderError,
    locale_chain,
)
from agents.routing.rules import RULES, NotificationRule
from streams.errors import PoisonError

ORDER = {"order_id": "ord-1", "total_minor": "4998", "currency": "EUR"}


def test_locale_chain_goes_from_specific_to_fallback() -> None:
    assert locale_chain("fr-CA", "en") == ["fr-CA", "fr", "en"]
    assert locale_chain("zh-Hant-TW", "en") == ["zh-Hant-TW", "zh-Hant", "zh", "en"]
    assert locale_chain("en-GB", "en") == ["en-GB", "en"]
    assert locale_chain(None, "en") == ["en"]


def test_a_language_falls_back_to_its_base_then_to_the_fallback_locale() -> None:
    renderer = TemplateRenderer()
    french = renderer.render("order-confirmation", "fr-CA", "email", ORDER)
    assert french == RenderedMessage(
        locale="fr",
        subject="Commande ord-1 confirmée",
        body="Merci pour votre commande ord-1.\n"
        "Nous avons bien reçu votre paiement de 49,98\u00a0€.",
    )
    german = renderer.render("order-confirmation", "de-DE", "email", ORDER)
    assert (german.locale, german.subject) == ("en", "Order ord-1 confirmed")
    assert (
        TemplateRenderer(fallback_locale="fr").render("welcome", "de", "email", {}).locale == "fr"
    )


def test_channels_get_their_own_body_and_a_subject_only_where_they_have_one() -> None:
    renderer = TemplateRenderer()
    sms = renderer.render("order-confirmation", "en", "sms", ORDER)
    assert sms == RenderedMessage("en", None, "Order ord-1 paid: €49.98. Thank you!")
    push = renderer.render("order-shipped", "en", "push", ORDER)
    assert push == RenderedMessage(
        "en", "Order ord-1 is on its way", "Your order ord-1 has shipped."
    )
    # No sms body of its own: the generic body, without the subject.
    assert renderer.render("welcome", "en", "sms", {}).subject is None


@pytest.mark.parametrize(
    ("locale", "total_minor", "currency", "shown"),
    [
        ("en", "1500", "JPY", "¥1,500"),  # no minor unit: 1500 yen, not 15.00
        ("en-US", "123456", "USD", "$1,234.56"),
        ("en", "1234", "KWD", "KWD1.234"),  # three decimals
        ("fr-CA", "4998", "EUR", "49,98\u00a0€"),  # the user's locale, the language's template
        ("xx-YY", "4998", "EUR", "€49.98"),  # a locale nobody knows: the fallback's format
    ],
)
def test_amounts_are_shown_in_the_currencys_own_unit_and_the_users_format(
    locale: str, total_minor: str, currency: str, shown: str
) -> None:
    order = {**ORDER, "total_minor": total_minor, "currency": currency}
    body = TemplateRenderer().render("order-refunded", locale, "email", order).body
    assert shown in body, body


def test_an_amount_that_is_not_a_number_is_poison() -> None:
    order = {**ORDER, "total_minor": "lots"}
    with pytest.raises(TemplateRenderError):
        TemplateRenderer().render("order-refunded", "en", "email", order)


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.name)
def test_every_rule_has_templates_for_the_fallback_locale_and_its_channels(
    rule: NotificationRule,
) -> None:
    renderer = TemplateRenderer()
    variables = {**ORDER, "ip": "203.0.113.7", "changed": "email"}
    for choice in rule.channels:
        for channel in choice.alternatives:
            message = renderer.render(rule.template, "en", channel, variables)
            assert message.body
    assert (TEMPLATE_DIR / f"{rule.template}.en.subject.j2").exists()


def _renderer(tmp_path: Path, **files: str) -> TemplateRenderer:
    for name, text in files.items():
        (tmp_path / f"{name}.j2").write_text(text)
    return TemplateRenderer(tmp_path)


@pytest.mark.parametrize(
    ("body", "variables", "message"),
    [
        ("Hello {{ name }}", {}, "'name' is undefined"),
        ("Hello {{ name ", {"name": "x"}, "TemplateSyntaxError"),
        ("{{ ''.__class__.__mro__ }}", {}, "SecurityError"),
        ("{{ name.__init__.__globals__ }}", {"name": "x"}, "SecurityError"),
        ("{% if false %}x{% endif %}", {}, "empty body"),
    ],
)
def test_broken_templates_are_poison(
    tmp_path: Path, body: str, variables: dict[str, str], message: str
) -> None:
    renderer = _renderer(tmp_path, **{"t.en.body": body})
    with pytest.raises(TemplateRenderError, match=message) as caught:
        renderer.render("t", "en", "email", variables)
    assert isinstance(caught.value, PoisonError)


def test_a_missing_template_is_poison(tmp_path: Path) -> None:
    renderer = _renderer(tmp_path, **{"t.fr.body": "Bonjour"})
    with pytest.raises(TemplateRenderError, match="no template 'nope'"):
        renderer.render("nope", "fr", "email", {})
    # Only in fr, and the fallback is en: a German user has no template.
    with pytest.raises(TemplateRenderError, match="for locale 'de'"):
        renderer.render("t", "de", "email", {})
    assert renderer.render("t", "fr-BE", "email", {}).body == "Bonjour"
