"""Is the database there, and is its schema the one this calltracking expects?"""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import make_url

from calltracking.app.doctor.result import CheckResult, fail, ok
from calltracking.config import DatabaseSettings
from calltracking.errors import DatabaseUnavailable
from calltracking.store.revisions import schema_revision

NAME = "database"
MIGRATE = "run `calltracking migrate`"


async def check_database(settings: DatabaseSettings) -> CheckResult:
    shown = make_url(settings.url).render_as_string(hide_password=True)
    try:
        revision = await asyncio.wait_for(schema_revision(settings), settings.connect_timeout_seconds + 5)
    except (DatabaseUnavailable, TimeoutError) as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else str(exc)
        return fail(
            NAME,
            f"cannot reach {shown}: {reason}",
            "check [database] url (host, port, user, password) and that the database server is running",
        )
    if revision.current is None:
        return fail(NAME, f"{shown} has no calltracking schema (head is {revision.head})", MIGRATE)
    if not revision.is_known:
        return fail(
            NAME,
            f"{shown} is at revision {revision.current}, which this calltracking does not know "
            f"(its newest is {revision.head})",
            "upgrade calltracking to the version that migrated this database",
        )
    if not revision.is_current:
        return fail(NAME, f"{shown} is at revision {revision.current}, behind {revision.head}", MIGRATE)
    return ok(NAME, f"{shown} reachable, migrations current ({revision.head})")
