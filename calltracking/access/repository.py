"""All SQL about API tokens and the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from calltracking.access.tokens import NewToken, Principal, Role
from calltracking.store.tables import ApiTokenRow, AuditRow


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    name: str
    prefix: str
    role: Role
    manager: str | None
    created_at: datetime
    revoked_at: datetime | None


async def create_token(
    session: AsyncSession, token: NewToken, name: str, role: Role, manager: str | None
) -> int:
    result = await session.execute(
        insert(ApiTokenRow).returning(ApiTokenRow.id),
        [
            {
                "name": name,
                "prefix": token.prefix,
                "secret_hash": token.secret_hash,
                "role": role.value,
                "manager": manager,
                "created_at": datetime.now(UTC),
                "revoked_at": None,
            }
        ],
    )
    return int(result.scalar_one())


async def principal_for(session: AsyncSession, secret_hash: str) -> Principal | None:
    row = (
        await session.execute(
            select(ApiTokenRow).where(
                ApiTokenRow.secret_hash == secret_hash, ApiTokenRow.revoked_at.is_(None)
            )
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    return Principal(token_id=row.id, role=Role(row.role), manager=row.manager)


async def revoke_token(session: AsyncSession, id_or_prefix: str) -> int:
    """Revoke by id or by the prefix shown at creation; returns how many tokens were revoked."""
    condition = ApiTokenRow.prefix == id_or_prefix
    if id_or_prefix.isdigit():
        condition = or_(condition, ApiTokenRow.id == int(id_or_prefix))
    result = await session.execute(
        update(ApiTokenRow)
        .where(condition, ApiTokenRow.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
        .returning(ApiTokenRow.id)
    )
    return len(result.all())


async def list_tokens(session: AsyncSession) -> list[TokenInfo]:
    rows = (await session.execute(select(ApiTokenRow).order_by(ApiTokenRow.id))).scalars().all()
    return [
        TokenInfo(
            id=row.id,
            name=row.name,
            prefix=row.prefix,
            role=Role(row.role),
            manager=row.manager,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
        )
        for row in rows
    ]


async def record_access(
    session: AsyncSession,
    principal: Principal,
    action: str,
    resource: str,
    resource_id: str,
    remote: str | None,
) -> None:
    await session.execute(
        insert(AuditRow),
        [
            {
                "at": datetime.now(UTC),
                "token_id": principal.token_id,
                "role": principal.role.value,
                "manager": principal.manager,
                "action": action,
                "resource": resource,
                "resource_id": resource_id,
                "remote": remote,
            }
        ],
    )
