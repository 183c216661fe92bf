"""Languages of the web interface: message catalogs read from their .po files at start (no compiled
files to build or commit), the language of the request being rendered, and dates, numbers and durations
written the way that language writes them."""

from __future__ import annotations

import io
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import date as Date
from datetime import datetime as DateTime
from datetime import tzinfo
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_datetime, format_time
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import NullTranslations, Translations

LANGUAGES = ("en", "ru")
SOURCE_LANGUAGE = "en"
CATALOG_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"

_language: ContextVar[str] = ContextVar("web_language", default=SOURCE_LANGUAGE)


def load_catalogs(directory: Path = CATALOG_DIR) -> dict[str, NullTranslations]:
    """Every language's translations. English is the templates' own text; a language's catalog is kept
    as one .po file per part of the interface (base, dashboard, calls, admin...), merged here."""
    catalogs: dict[str, NullTranslations] = {SOURCE_LANGUAGE: NullTranslations()}
    for language in LANGUAGES:
        if language == SOURCE_LANGUAGE:
            continue
        catalog = Catalog(locale=language, domain=DOMAIN)
        for path in sorted((directory / language / "LC_MESSAGES").glob("*.po")):
            with path.open("rb") as po:
                for message in read_po(po, locale=language):
                    if message.id:
                        catalog[message.id] = message
        compiled = io.BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        catalogs[language] = Translations(compiled, domain=DOMAIN)
    return catalogs


def negotiate(chosen: str | None, accept_language: str | None, default: str) -> str:
    """The user's own choice (the language cookie), else the browser's first supported language, else
    the configured default."""
    if chosen in LANGUAGES:
        return chosen
    for tag in _accepted(accept_language or ""):
        primary = tag.split("-", 1)[0].lower()
        if primary in LANGUAGES:
            return primary
    return default


def _accepted(header: str) -> Iterable[str]:
    weighted = []
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        if tag and weight > 0:  # q=0 (or unreadable) means "not this one"
            weighted.append((-weight, position, tag))
    return [tag for _, _, tag in sorted(weighted)]


def set_language(language: str) -> None:
    _language.set(language)


def current_language() -> str:
    return _language.get()


class Translator:
    """gettext and ngettext for templates, in the language of the request being rendered."""

    def __init__(self, catalogs: dict[str, NullTranslations]) -> None:
        self._catalogs = catalogs

    def gettext(self, message: str) -> str:
        return self._catalogs[_language.get()].gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._catalogs[_language.get()].ngettext(singular, plural, n)


class Formats:
    """Values as the current language writes them, times in the given zone."""

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone

    @property
    def _locale(self) -> Locale:
        return Locale.parse(_language.get())

    def datetime(self, value: DateTime | None) -> str:
        if value is None:
            return ""
        return format_datetime(value, "short", tzinfo=self.zone, locale=self._locale)

    def time(self, value: DateTime | None) -> str:
        if value is None:
            return ""
        return format_time(value, "medium", tzinfo=self.zone, locale=self._locale)

    def date(self, value: Date | str | None) -> str:
        if value is None:
            return ""
        day = Date.fromisoformat(value) if isinstance(value, str) else value
        return format_date(day, "medium", locale=self._locale)

    def number(self, value: float | int | None, digits: int = 0) -> str:
        if value is None:
            return "—"
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, pattern, locale=self._locale)

    def percent(self, value: float | None) -> str:
        """A share (0..1) as a percentage."""
        if value is None:
            return "—"
        return format_percent(value, "#,##0%", locale=self._locale)

    @staticmethod
    def duration(seconds: float | None) -> str:
        """H:MM:SS (or M:SS): read the same in both languages, and sortable by eye in a column."""
        if seconds is None:
            return "—"
        whole = max(round(seconds), 0)
        hours, rest = divmod(whole, 3600)
        minutes, secs = divmod(rest, 60)
        return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
