"""The Jinja2 sandbox every notification template renders in: the router's and the API's preview.

Templates are sandboxed (variables come from upstream events, and template versions come from
operators through the API) and undefined variables are errors rather than silent blanks. Amounts
arrive in minor units; the `money` filter shows them in the currency's own unit (ISO 4217
digits: JPY has none, KWD three) and in the number format of the user's locale, through Babel's
CLDR data. Every failure is a `TemplateSourceError` naming the part (subject or body) and, when
Jinja2 knows it, the line: what an operator needs to fix a version.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency, get_currency_precision
from jinja2 import StrictUndefined, Template, pass_context
from jinja2.exceptions import TemplateError, TemplateSyntaxError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from streams.errors import PoisonError

# The variable a render sets to the user's locale, for filters that format numbers.
LOCALE_VARIABLE = "_locale"
# The file name Jinja2 gives a template compiled from a string: its frames in a traceback.
_SOURCE_FILE = "<template>"
_CACHE_ENTRIES = 1024


class TemplateSourceError(PoisonError):
    """A template part that does not compile or does not render with the variables given."""

    def __init__(self, part: str, line: int | None, message: str) -> None:
        where = f"{part}, line {line}" if line is not None else part
        super().__init__(f"{where}: {message}")
        self.part = part
        self.line = line
        self.message = message


@lru_cache(maxsize=256)
def number_locale(locale: str, fallback_locale: str) -> Locale:
    """The CLDR locale to format numbers in: the user's own (`fr-CA` formats as in Canada even
    when the text comes from the `fr` templates), else the fallback's, else English."""
    for candidate in (locale, fallback_locale, "en"):
        try:
            return Locale.parse(candidate, sep="-")
        except (UnknownLocaleError, ValueError):
            continue
    raise AssertionError("Babel always knows English")


def money(amount_minor: Any, currency: str, locale: Locale) -> str:
    """`amount_minor` of `currency` in its own unit, as `locale` writes amounts."""
    try:
        minor = int(str(amount_minor))
    except ValueError as exc:
        raise TemplateError(
            f"amount {amount_minor!r} is not a whole number of minor units"
        ) from exc
    amount = Decimal(minor).scaleb(-get_currency_precision(currency))
    return str(format_currency(amount, currency, locale=locale))


@pass_context
def _money_filter(context: Context, amount_minor: Any, currency: str) -> str:
    locale = context.get(LOCALE_VARIABLE)
    assert isinstance(locale, Locale)
    return money(amount_minor, currency, locale)


def _error_line(exc: BaseException) -> int | None:
    """The template line an error happened on: Jinja2 rewrites tracebacks so that frames of
    template code carry the template's own line numbers."""
    if isinstance(exc, TemplateSyntaxError):
        return exc.lineno
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _SOURCE_FILE:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class Sandbox:
    """Compiles template sources (each compiled once, cached by its text) and renders them."""

    def __init__(self) -> None:
        self._env = SandboxedEnvironment(
            undefined=StrictUndefined,
            autoescape=False,  # plain-text messages; nothing here is HTML
            keep_trailing_newline=False,
            auto_reload=False,
        )
        self._env.filters["money"] = _money_filter
        self._compiled: dict[str, Template] = {}

    def compile(self, part: str, source: str) -> Template:
        found = self._compiled.get(source)
        if found is not None:
            return found
        try:
            compiled = self._env.from_string(source)
        except TemplateSyntaxError as exc:
            message = f"TemplateSyntaxError: {exc.message or exc}"
            raise TemplateSourceError(part, exc.lineno, message) from exc
        if len(self._compiled) >= _CACHE_ENTRIES:
            self._compiled.clear()
        self._compiled[source] = compiled
        return compiled

    def render(self, part: str, source: str, variables: Mapping[str, Any], locale: Locale) -> str:
        """`source` rendered with `variables`, stripped; `locale` formats numbers."""
        compiled = self.compile(part, source)
        try:
            return compiled.render({**variables, LOCALE_VARIABLE: locale}).strip()
        # Any failure: the source is data (an operator's), so `{{ 1 / 0 }}` or `{{ x + 1 }}`
        # on text are its errors, to report, not the process's.
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            raise TemplateSourceError(part, _error_line(exc), message) from exc
