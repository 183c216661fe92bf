"""Every text the templates show has a Russian translation, and the catalogs hold nothing stale."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_file
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


def test_every_template_text_is_translated_to_russian() -> None:
    russian = load_catalogs()["ru"]
    missing = {
        message: sorted(where)
        for message, where in template_messages().items()
        if russian.gettext(message) == message
    }
    assert missing == {}


def test_the_catalogs_translate_nothing_the_templates_no_longer_say() -> None:
    from babel.messages.pofile import read_po

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
