"""docs/configuration.md is the settings object's reference: regenerated, it reads the same."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from pydantic import BaseModel

from calltracking.app.config_reference import render_reference
from calltracking.config import Settings

REFERENCE = Path(__file__).parents[2] / "docs" / "configuration.md"
REGENERATE = (
    "docs/configuration.md is out of date: run `calltracking config-reference --output docs/configuration.md`"
)


def test_the_checked_in_reference_is_the_generated_one() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == render_reference(), REGENERATE


def test_every_setting_is_in_the_reference_with_a_description() -> None:
    text = render_reference()
    for section in ("[database]", "[[pbx]]", "[pbx.click_to_call]", '[tracking.dids."<number>"]', "[log]"):
        assert f"## `{section}`" in text
    for name, info in Settings.model_fields.items():
        model = info.annotation if isinstance(info.annotation, type) else None
        assert name == "pbxs" or f"`{name}`" in text or (model is not None and f"[{name}]" in text)
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == _leaf_settings(Settings)
    assert [row for row in rows if row.split(" | ")[3].strip() == ""] == []
    assert "| `port` | integer, >= 1, <= 65535 | `5038` |" in text
    assert "`CALLTRACKING_DATABASE__URL`" in text and "<data_dir>/calltracking.db" in text


def _leaf_settings(model: type[BaseModel]) -> int:
    """How many keys a reference of `model` has: every field but the sections, counted within them."""
    count = 0
    for info in model.model_fields.values():
        inner = [info.annotation, *get_args(info.annotation)]
        sections = [kind for kind in inner if isinstance(kind, type) and issubclass(kind, BaseModel)]
        count += _leaf_settings(sections[0]) if sections else 1
    return count
