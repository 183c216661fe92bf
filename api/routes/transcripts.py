"""A call's transcript: JSON, plain text (a line per utterance) or WebVTT (for a player's captions), to
the same callers as its recording, every read audited like the recording's."""

from __future__ import annotations

from typing import Literal

import structlog
from aiohttp import web
from pydantic import BaseModel

from api.errors import Gone, NotFound
from api.keys import SESSIONS
from api.operations import Api, Context
from api.visibility import Audience
from calltracking.access.repository import record_access
from calltracking.calls.recording import RecordingState, recording_state_of
from calltracking.calls.repository import get_call
from calltracking.calls.transcript import Transcript
from recordings.repository import recordings_of_calls
from transcription.jobs import get_transcript

log = structlog.get_logger(__name__)
api = Api()
PLAIN = "text/plain"
VTT = "text/vtt"


class WordOut(BaseModel):
    text: str
    start: float
    end: float
    confidence: float


class UtteranceOut(BaseModel):
    speaker: Literal["customer", "manager", "unknown"]
    start: float
    end: float
    text: str
    words: list[WordOut]


class TranscriptOut(BaseModel):
    language: str
    utterances: list[UtteranceOut]


@api.route(
    "GET",
    "/api/v1/calls/{call_id}/transcript",
    summary="A call's transcript",
    tag="recordings",
    path_params={"call_id": {"type": "integer", "minimum": 1}},
    responses={200: TranscriptOut, 404: None, 410: None},
    extra_content={200: {PLAIN: {"schema": {"type": "string"}}, VTT: {"schema": {"type": "string"}}}},
    description="Utterances in time order, each with its speaker (`customer`, `manager`, or `unknown` for "
    "a mono recording), start and end in seconds from the start of the recording, and word timings. "
    "`Accept: text/plain` gives a line per utterance (`[00:01.5] manager: ...`); `Accept: text/vtt` "
    "WebVTT captions with `<v manager>` voice spans. Same callers as the recording: a manager token reads "
    "only its own calls' transcripts. Every read is written to the audit log. 404 `transcript_pending` "
    "while a ready recording waits for transcription, 410 once retention deleted it.",
)
async def get_call_transcript(request: web.Request, ctx: Context) -> web.StreamResponse:
    call_id = int(request.match_info["call_id"])
    principal = ctx.caller
    async with request.app[SESSIONS]() as session:
        stored = await get_call(
            session, call_id, manager=Audience.of(principal).call_manager, with_legs=False
        )
        if stored is None:
            raise NotFound(f"no call {call_id}")
        transcript = await get_transcript(session, call_id)
        recording = None if transcript else (await recordings_of_calls(session, [call_id])).get(call_id)
    if transcript is None:
        state = recording_state_of(recording, stored.call.recording_file is not None)
        if state in (RecordingState.DELETED.value, RecordingState.DELETING.value):
            raise Gone(f"the transcript of call {call_id} was deleted by the retention policy")
        if state == RecordingState.READY.value:
            raise _TranscriptPending(call_id)
        raise NotFound(
            f"call {call_id} has no transcript: its recording is {state}", {"recording_state": state}
        )
    async with request.app[SESSIONS].begin() as session:
        await record_access(session, principal, "transcript.read", "call", str(call_id), request.remote)
    accept = request.headers.get("Accept", "")
    log.info("transcript_read", call_id=call_id, token_id=principal.token_id)
    headers = {"Cache-Control": "private, no-store"}
    if VTT in accept:
        return web.Response(text=webvtt(transcript), content_type=VTT, headers=headers)
    if PLAIN in accept:
        return web.Response(text=plain_text(transcript), content_type=PLAIN, headers=headers)
    return web.json_response(transcript.view(), headers=headers)


class _TranscriptPending(NotFound):
    code = "transcript_pending"

    def __init__(self, call_id: int) -> None:
        super().__init__(
            f"call {call_id}'s recording is ready; its transcript is not yet",
            {"recording_state": RecordingState.READY.value},
        )


def plain_text(transcript: Transcript) -> str:
    """`[00:01.5] manager: text`, a line per utterance."""
    return "".join(
        f"[{_clock(u.start, '.', 1)}] {u.speaker.value}: {_one_line(u.text)}\n" for u in transcript.utterances
    )


def webvtt(transcript: Transcript) -> str:
    cues = [
        f"{_clock(u.start, '.', 3, hours=True)} --> {_clock(max(u.end, u.start), '.', 3, hours=True)}\n"
        f"<v {u.speaker.value}>{_escaped(_one_line(u.text))}\n"
        for u in transcript.utterances
    ]
    return "WEBVTT\n\n" + "\n".join(cues)


def _clock(seconds: float, point: str, decimals: int, *, hours: bool = False) -> str:
    """`01:02.5`, or `1:01:02.5` past an hour; WebVTT's `00:01:02.500` with `hours`."""
    scale = 10**decimals
    whole = round(max(seconds, 0.0) * scale)
    h, rest = divmod(whole, 3600 * scale)
    m, rest = divmod(rest, 60 * scale)
    s, fraction = divmod(rest, scale)
    tail = f"{m:02d}:{s:02d}{point}{fraction:0{decimals}d}"
    return f"{h:02d}:{tail}" if hours else (f"{h}:{tail}" if h else tail)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _escaped(text: str) -> str:
    """A cue's text may not hold `<`, `&` or `-->` as written (WebVTT)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
