"""A small CRM mirror for the real captures' people and numbers, and entity factories."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.config import CrmSettings, TrackingSettings
from calltracking.crm.mirror import CompanyIn, ContactIn, LeadIn, ManagerIn
from calltracking.crm.repository import upsert_managers, upsert_parties

SEEDED_AT = datetime(2026, 11, 1, tzinfo=UTC)
# The captures' desk phones (shared/ami-traces/README.md), as the CRM's users.
MANAGERS = (
    ManagerIn(external_id="m-anna", name="Anna Petrova", extensions=["101"]),
    ManagerIn(external_id="m-boris", name="Boris Ivanov", extensions=["102"]),
    ManagerIn(external_id="m-vera", name="Vera Smirnova", extensions=["103"]),
)
# Two of the captures' callers are known to the CRM, written the way people type numbers.
CONTACT_QUEUE_CALLER = ContactIn(
    external_id="c-100", name="Ivan Orlov", owner="m-vera", company="co-7", phones=["8 (926) 111-22-33"]
)
COMPANY_BUSY_CALLER = CompanyIn(
    external_id="co-7", name="Orlov & Sons", owner="m-boris", phones=["+7 903 555-01-02"]
)
TRACKING = TrackingSettings.model_validate(
    {
        "dids": {
            "74951110001": {
                "source": "google",
                "medium": "cpc",
                "campaign": "winter",
                "default_manager": "m-boris",
            },
            "74951110002": {"source": "yandex", "medium": "organic"},
        }
    }
)
ALL_LEADS = CrmSettings.model_validate(
    {"auto_leads": {"answered_inbound": True, "missed_inbound": True, "outbound_unknown": True}}
)


async def seed_crm(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        await upsert_managers(session, MANAGERS, SEEDED_AT)
        await upsert_parties(session, [CONTACT_QUEUE_CALLER, COMPANY_BUSY_CALLER], "RU", SEEDED_AT)


def make_contact(external_id: str, *phones: str, **fields: Any) -> ContactIn:
    return ContactIn(external_id=external_id, phones=list(phones), **fields)


def make_lead(external_id: str, *phones: str, **fields: Any) -> LeadIn:
    return LeadIn(external_id=external_id, phones=list(phones), **fields)
