"""All SQL about web-interface sessions. A session lives as long as its expiry and its token: revoking a
token ends every browser signed in with it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from calltracking.access.tokens import Principal, Role
from calltracking.store.tables import ApiTokenRow, WebSessionRow


@dataclass(frozen=True, slots=True)
class WebSession:
    """A signed-in browser: who it acts as, its forms' CSRF secret, and the name of its token."""

    principal: Principal
    csrf_token: str
    token_name: str
    expires_at: datetime


async def create_web_session(
    session: AsyncSession,
    secret_hash: str,
    token_id: int,
    csrf_token: str,
    now: datetime,
    expires_at: datetime,
) -> None:
    await session.execute(
        insert(WebSessionRow),
        [
            {
                "secret_hash": secret_hash,
                "token_id": token_id,
                "csrf_token": csrf_token,
                "created_at": now,
                "expires_at": expires_at,
            }
        ],
    )


async def web_session_for(session: AsyncSession, secret_hash: str, now: datetime) -> WebSession | None:
    """The live session behind a cookie: unexpired, and its token not revoked."""
    row = (
        await session.execute(
            select(
                WebSessionRow.csrf_token,
                WebSessionRow.expires_at,
                ApiTokenRow.id,
                ApiTokenRow.role,
                ApiTokenRow.manager,
                ApiTokenRow.name,
            )
            .join(ApiTokenRow, ApiTokenRow.id == WebSessionRow.token_id)
            .where(
                WebSessionRow.secret_hash == secret_hash,
                WebSessionRow.expires_at > now,
                ApiTokenRow.revoked_at.is_(None),
            )
        )
    ).one_or_none()
    if row is None:
        return None
    return WebSession(
        principal=Principal(token_id=row.id, role=Role(row.role), manager=row.manager),
        csrf_token=row.csrf_token,
        token_name=row.name,
        expires_at=row.expires_at,
    )


async def end_web_session(session: AsyncSession, secret_hash: str) -> None:
    await session.execute(delete(WebSessionRow).where(WebSessionRow.secret_hash == secret_hash))


async def end_expired_web_sessions(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(
        delete(WebSessionRow).where(WebSessionRow.expires_at <= now).returning(WebSessionRow.id)
    )
    return len(result.all())
