"""Scoring stored transcripts again with the checklist in force (`calltracking quality rescore`): a batch
per transaction, so a large backlog neither holds one long transaction nor loses the batches already
done when interrupted. Idempotent: a second run writes the same scores."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.quality.checklist import ChecklistInForce
from calltracking.quality.repository import rescore_batch

log = structlog.get_logger(__name__)
RESCORE_BATCH = 200


@dataclass(frozen=True, slots=True)
class RescoreSummary:
    checklist: str
    checklist_sha256: str
    since: datetime | None
    transcripts: int
    changed: int
    batches: int

    def view(self) -> dict[str, object]:
        return {
            "checklist": self.checklist,
            "checklist_sha256": self.checklist_sha256,
            "since": self.since.isoformat() if self.since else None,
            "transcripts": self.transcripts,
            "changed": self.changed,
            "batches": self.batches,
        }


async def rescore_transcripts(
    sessions: async_sessionmaker[AsyncSession],
    checklist: ChecklistInForce,
    now: datetime,
    since: datetime | None = None,
    batch_size: int = RESCORE_BATCH,
) -> RescoreSummary:
    after, transcripts, changed, batches = 0, 0, 0, 0
    while True:
        async with sessions.begin() as session:
            batch = await rescore_batch(
                session, checklist, now, after_call_id=after, since=since, limit=batch_size
            )
        if batch.last_call_id is None:
            break
        after = batch.last_call_id
        transcripts += batch.transcripts
        changed += batch.changed
        batches += 1
        log.info("quality_rescored_batch", last_call_id=after, transcripts=transcripts, changed=changed)
    return RescoreSummary(checklist.source, checklist.sha256, since, transcripts, changed, batches)
