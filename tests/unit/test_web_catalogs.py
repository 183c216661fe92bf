"""Every text the templates show has a Russian translation, and the catalogs hold nothing stale."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

from api.web.i18n import CATALOG_DIR, load_catalogs

TEMPLATES = Path(__file__).resolve().parents[2] / "api" / "web" / "templates"


def template_messages() -> dict[str, set[str]]:
    """msgid -> the templates it appears in (plural forms by their singular)."""
    found: dict[str, set[str]] = {}
    for path in sorted(TEMPLATES.glob("*.html")):
        for _, message, _, _ in extract_from_file(
            babel_extract, str(path), options={"extensions": "jinja2.ext.i18n"}
        ):
            singular = message[0] if isinstance(message, tuple) else message
            found.setdefault(singular, set()).add(path.name)
    return found


def russian_entries() -> dict[str, dict[str, object]]:
    """msgid -> {catalog file: its translation}, over every Russian catalog file."""
    entries: dict[str, dict[str, object]] = {}
    for path in sorted((CATALOG_DIR / "ru" / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as po:
            for message in read_po(po):
                singular = message.id[0] if isinstance(message.id, tuple) else message.id
                if (
                    singular
                    and message.string
                    and all(message.string if isinstance(message.string, tuple) else [message.string])
                ):
                    entries.setdefault(singular, {})[path.name] = message.string
    return entries


def test_every_template_text_is_translated_to_russian() -> None:
    translated = russian_entries()
    missing = {
        message: sorted(where) for message, where in template_messages().items() if message not in translated
    }
    assert missing == {}


def test_a_text_in_several_catalog_files_reads_the_same_in_each() -> None:
    """The files are merged into one catalog: two translations of one text would be a coin toss."""
    differing = {
        message: by_file
        for message, by_file in russian_entries().items()
        if len(set(map(str, by_file.values()))) > 1
    }
    assert differing == {}


def test_the_catalogs_load_and_translate() -> None:
    russian = load_catalogs()["ru"]
    assert russian.gettext("Calls") == "Звонки"
    assert russian.ngettext("%(num)d won deal with no call", "%(num)d won deals with no call", 5).startswith(
        "%(num)d выигранных"
    )


def test_the_catalogs_translate_nothing_the_templates_no_longer_say() -> None:
    used = set(template_messages())
    stale = []
    for path in sorted((CATALOG_DIR / "ru" / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as po:
            stale += [
                f"{path.name}: {m.id!r}"
                for m in read_po(po)
                if m.id and (m.id[0] if isinstance(m.id, tuple) else m.id) not in used
            ]
    assert stale == []
