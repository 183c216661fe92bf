"""The configuration reference (docs/configuration.md), generated from the settings object: every section
and key as it is written in the TOML file and in the environment, its type, default and description."""

from __future__ import annotations

import json
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from calltracking.config import ENV_PREFIX, Settings

# The reference shows the defaults that follow from the data directory with it as a placeholder.
DATA_DIR = "<data_dir>"
DATA_DIR_DEFAULT = (
    "`$STATE_DIRECTORY` (systemd's `StateDirectory=`), else `$XDG_STATE_HOME/calltracking`, else "
    "`~/.local/state/calltracking`"
)

HEADER = f"""# Configuration reference

Generated from the settings object (`calltracking/config.py`) by `calltracking config-reference`; a test
fails when this file is out of date. Do not edit it by hand: change the docstrings in `config.py`, then
run `calltracking config-reference --output docs/configuration.md`.

Settings come from a TOML file (`calltracking --config FILE`, or `CALLTRACKING_CONFIG`), the
environment and the command line; the environment wins over the file. A key `[section] key` is the
variable `{ENV_PREFIX}SECTION__KEY` (nested sections joined by `__`); lists and tables are JSON in the
environment, and the PBXs are one JSON list, `CALLTRACKING_PBXS='[{{"name": "office", ...}}]'`. A bad
setting stops every command with one line per problem naming it as it is written here.
"""


def render_reference() -> str:
    defaults = Settings.model_validate({"data_dir": DATA_DIR})
    out = [HEADER]
    top = [(name, info) for name, info in Settings.model_fields.items() if _model_of(info) is None]
    out.append("## Top level\n")
    out.extend(_table([_row(name, info, getattr(defaults, name), [name]) for name, info in top]))
    for name, info in Settings.model_fields.items():
        model = _model_of(info)
        if model is None:
            continue
        value = getattr(defaults, name)
        if name == "pbxs":
            out.extend(_section("[[pbx]]", model, value[0], None, repeated="pbx"))
        else:
            out.extend(_section(f"[{name}]", model, value, [name]))
    return "\n".join(out).rstrip() + "\n"


def _section(
    title: str, model: type[BaseModel], value: Any, env: list[str] | None, repeated: str | None = None
) -> Iterator[str]:
    """A section's table, then its subsections (`[pbx.click_to_call]`, `[tracking.dids."<number>"]`)."""
    yield f"## `{title}`\n"
    if model.__doc__ and model.__doc__ is not BaseModel.__doc__:
        yield " ".join(model.__doc__.split()) + "\n"
    if repeated == "pbx":
        yield (
            "One block per PBX (`[[pbx]]` again for the next). In the environment: the whole list as JSON "
            "in `CALLTRACKING_PBXS`.\n"
        )
    rows = []
    subsections: list[tuple[str, FieldInfo, Any]] = []
    for name, info in model.model_fields.items():
        if _model_of(info) is not None or _table_model_of(info) is not None:
            subsections.append((name, info, getattr(value, name)))
            continue
        rows.append(_row(name, info, getattr(value, name), None if env is None else [*env, name]))
    yield from _table(rows)
    prefix = title.strip("[]`")
    for name, info, sub_value in subsections:
        sub_env = None if env is None else [*env, name]
        if (nested := _model_of(info)) is not None:
            yield from _section(f"[{prefix}.{name}]", nested, sub_value, sub_env)
        elif (entry := _table_model_of(info)) is not None:
            key = '"<number>"' if name == "dids" else '"<key>"'
            yield from _section(f"[{prefix}.{name}.{key}]", entry, entry(), None)


def _row(name: str, info: FieldInfo, default: Any, env: list[str] | None) -> tuple[str, ...]:
    description = info.description or ""
    variable = f"`{ENV_PREFIX}{'__'.join(env).upper()}`" if env else ""
    shown = DATA_DIR_DEFAULT if name == "data_dir" else _toml(default)
    return (
        f"`{name}`",
        _type(info.annotation) + _bounds(info),
        shown,
        " ".join(description.split()),
        variable,
    )


def _table(rows: list[tuple[str, ...]]) -> Iterator[str]:
    yield "| key | type | default | description | environment |"
    yield "| --- | --- | --- | --- | --- |"
    for row in rows:
        yield "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
    yield ""


def _model_of(info: FieldInfo) -> type[BaseModel] | None:
    annotation = info.annotation
    if get_origin(annotation) is tuple:
        annotation = get_args(annotation)[0]
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _table_model_of(info: FieldInfo) -> type[BaseModel] | None:
    """The entry model of a table of sections, e.g. `dids: dict[str, DidSettings]`."""
    if get_origin(info.annotation) is dict:
        entry = get_args(info.annotation)[1]
        if isinstance(entry, type) and issubclass(entry, BaseModel):
            return entry
    return None


_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean", Path: "path"}


def _type(annotation: Any) -> str:
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(f"`{json.dumps(arg)}`" for arg in args)
    if origin in (Union, types.UnionType):
        present = [arg for arg in args if arg is not type(None)]
        return " or ".join(_type(arg) for arg in present) + (
            " (optional)" if len(present) < len(args) else ""
        )
    if origin is tuple:
        return f"list of {_type(args[0])}s"
    if origin is dict:
        return f"table of {_type(args[1])}s"
    return _NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _bounds(info: FieldInfo) -> str:
    words = []
    for item in info.metadata:
        for kind, attribute, symbol in ((Gt, "gt", ">"), (Ge, "ge", ">="), (Lt, "lt", "<"), (Le, "le", "<=")):
            if isinstance(item, kind):
                words.append(f"{symbol} {getattr(item, attribute)}")
        if isinstance(item, MaxLen):
            words.append(f"at most {item.max_length} characters")
        if isinstance(item, MinLen):
            words.append(f"at least {item.min_length} characters")
        pattern = getattr(item, "pattern", None)
        if pattern:
            words.append(f"matching `{pattern}`")
    return f", {', '.join(words)}" if words else ""


def _toml(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path):
        return f"`{json.dumps(str(value))}`"
    if isinstance(value, str | int | float):
        return f"`{json.dumps(value, ensure_ascii=False)}`"
    if isinstance(value, tuple | list):
        return f"`{json.dumps([str(item) for item in value], ensure_ascii=False)}`"
    if isinstance(value, dict):
        return "`{}`" if not value else f"`{json.dumps(value, ensure_ascii=False)}`"
    return f"`{value}`"
