"""One call's page: its facts, what happened in order, its parties and CRM match, the recording with a
player, the transcript that follows the player, and the quality score. The same people see it as see
the call through the API (`Audience`): a manager only their own calls, anyone else a 404, the same
answer a call that does not exist gets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.keys import SESSIONS
from api.visibility import Audience
from api.web.call_timeline import call_timeline
from api.web.render import render, web_session
from calltracking.access.repository import record_access
from calltracking.access.tokens import Principal
from calltracking.calls.record import EntityRef, StoredCall
from calltracking.calls.recording import Recording, recording_state_of, recording_url
from calltracking.calls.repository import get_call
from calltracking.calls.transcript import Transcript
from calltracking.crm.match_repository import StoredMatch, entity_refs, get_matches
from calltracking.quality.repository import score_of
from calltracking.quality.scored import ScoredCall
from recordings.repository import recordings_of_calls
from transcription.jobs import get_transcript


def install(app: web.Application) -> None:
    app.router.add_get(r"/calls/{call_id:\d+}", call_page)


@dataclass(frozen=True, slots=True)
class CallDetail:
    """Everything the page shows of one call, read in one session."""

    stored: StoredCall
    entity: EntityRef | None
    match: StoredMatch | None
    recording: Recording | None
    transcript: Transcript | None
    score: ScoredCall | None

    @property
    def recording_state(self) -> str:
        return recording_state_of(self.recording, self.stored.call.recording_file is not None)

    @property
    def playable(self) -> bool:
        return self.recording is not None and self.recording.is_ready


@dataclass(frozen=True, slots=True)
class MetricRow:
    """One figure of the quality score, with how to write it: a share, seconds, or a rate per minute."""

    name: str
    value: float | None
    kind: str


async def call_page(request: web.Request) -> web.StreamResponse:
    found = web_session(request)
    call_id = int(request.match_info["call_id"])
    detail = await load_call_detail(request.config_dict[SESSIONS], call_id, Audience.of(found.principal))
    if detail is None:
        raise web.HTTPNotFound()
    if detail.transcript is not None:
        await _audit_transcript_read(request, found.principal, call_id)
    return render(request, "call.html", _context(detail))


async def load_call_detail(
    sessions: async_sessionmaker[AsyncSession], call_id: int, audience: Audience
) -> CallDetail | None:
    """The call as `audience` may see it (None: no such call, or not theirs), with what the API's
    `GET /api/v1/calls/{id}` adds to it, its transcript and its quality score."""
    async with sessions() as session:
        stored = await get_call(session, call_id, manager=audience.call_manager)
        if stored is None:
            return None
        return CallDetail(
            stored=stored,
            entity=(await entity_refs(session, [call_id])).get(call_id),
            match=(await get_matches(session, [call_id])).get(call_id),
            recording=(await recordings_of_calls(session, [call_id])).get(call_id),
            transcript=await get_transcript(session, call_id),
            score=await score_of(session, call_id),
        )


async def _audit_transcript_read(request: web.Request, principal: Principal, call_id: int) -> None:
    """Showing a transcript is reading it: written to the audit log as the API's transcript read is."""
    async with request.config_dict[SESSIONS].begin() as session:
        await record_access(session, principal, "transcript.read", "call", str(call_id), request.remote)


def _context(detail: CallDetail) -> dict[str, Any]:
    call = detail.stored.call
    candidates = list(detail.match.candidates) if detail.match is not None else []
    return {
        "call_id": detail.stored.id,
        "call": call,
        "detail": detail,
        "timeline": call_timeline(call),
        "candidates": candidates if len(candidates) > 1 else [],
        "recording_src": recording_url(detail.stored.id),
        "sides": [side.value for side in detail.recording.sides]
        if detail.playable and detail.recording
        else [],
        "metrics": metric_rows(detail.score.metrics) if detail.score is not None else [],
        "checks": _checks(detail.score),
    }


def _sides(detail: CallDetail) -> list[str]:
    """The directions of a split recording the player can switch to (none for a mono one)."""
    if detail.recording is None or not detail.playable:
        return []
    return [side.value for side in detail.recording.sides]


# The figures a checklist's bounds name (`calltracking.quality.checklist.metric_values`), in page order.
METRICS = (
    ("manager_talk_share", "share"),
    ("customer_talk_share", "share"),
    ("silence_share", "share"),
    ("longest_monologue_seconds", "seconds"),
    ("overtalk_seconds", "seconds"),
    ("manager_first_word_seconds", "seconds"),
    ("manager_words_per_minute", "rate"),
    ("customer_words_per_minute", "rate"),
    ("manager_hesitations_per_minute", "rate"),
)


def metric_rows(metrics: dict[str, Any]) -> list[MetricRow]:
    """The stored score's figures the page shows, those the score has, in a fixed order."""
    return [MetricRow(name, _number(metrics.get(name)), kind) for name, kind in METRICS if name in metrics]


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _checks(score: ScoredCall | None) -> dict[str, list[dict[str, Any]]]:
    """The checklist as stored with the score: required and forbidden phrases with their hits, and the
    figures' bounds."""
    if score is None:
        return {"required": [], "forbidden": [], "bounds": []}
    return {name: list(score.checklist.get(name, [])) for name in ("required", "forbidden", "bounds")}
