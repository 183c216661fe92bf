"""The `calltracking` command's parser: what `--help` costs, and that it offers what the code accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import get_args

from calltracking.app.cli import IMPORT_KINDS
from calltracking.crm.mirror import ImportKind

HEAVY = ("sqlalchemy", "aiohttp", "panoramisk", "asyncpg", "aiosqlite", "pydantic", "phonenumbers", "pydub")

# `--help` in a fresh interpreter, then the top-level packages it imported, as JSON on stderr.
PROBE = """
import json, sys
from calltracking.app.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
modules = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps({"code": code, "modules": modules}), file=sys.stderr)
"""


def help_of(*argv: str) -> tuple[int, str, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=False, timeout=60
    )
    probe = json.loads(done.stderr.splitlines()[-1])
    return probe["code"], done.stdout, set(probe["modules"])


def test_help_imports_no_database_http_or_ami_library() -> None:
    code, out, modules = help_of("--help")

    assert (code, "serve" in out, "import" in out) == (0, True, True)
    assert modules.isdisjoint(HEAVY), sorted(modules & set(HEAVY))


def test_a_subcommands_help_imports_no_database_http_or_ami_library() -> None:
    code, out, modules = help_of("import", "--help")

    assert (code, "managers,contacts,companies,leads,deals" in out) == (0, True)
    assert modules.isdisjoint(HEAVY), sorted(modules & set(HEAVY))


def test_the_import_command_offers_exactly_the_kinds_the_loader_takes() -> None:
    assert get_args(ImportKind) == IMPORT_KINDS
