"""Recordings: stream a call's audio (with Range, so a browser player can seek), accept a file pushed by
a PBX on another host, and put a call on legal hold. Every read of audio is audited."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Literal

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from api.errors import BodyTooLarge, Gone, InvalidRequest, NotFound, RangeNotSatisfiable
from api.keys import RECORDING_WORKER, SESSIONS, SETTINGS
from api.operations import Api, Context
from api.visibility import Audience
from calltracking.access.repository import record_access
from calltracking.access.tokens import Role
from calltracking.calls.recording import FORMATS, Part, RecordingState, recording_state_of
from calltracking.calls.repository import get_call
from calltracking.crm.call_matching import utc_now
from recordings.repository import recordings_of_calls, register_push, set_legal_hold
from recordings.sources import PathRefused
from recordings.storage import CALL_KEY, MAX_NAME, SAFE_NAME, RecordingStore

log = structlog.get_logger(__name__)
api = Api()
AUDIO = "audio/ogg"
UPLOAD_CHUNK = 1 << 20
CALL_ID = {"call_id": {"type": "integer", "minimum": 1}}
RANGE_PATTERN = r"^bytes=(?:[0-9]{1,18}-[0-9]{0,18}|-[0-9]{1,18})$"


class RecordingQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    side: Literal["customer", "manager"] | None = Field(
        default=None, description="one side of a split recording (default: both, mixed)"
    )


class PushQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    part: Literal["mix", "rx", "tx", "stereo"] = Field(
        default="mix",
        description="mix: the MixMonitor file; rx/tx: its r()/t() halves; stereo: option D's raw stream "
        "(signed 16-bit, 8 kHz, rx left)",
    )


class PushAccepted(BaseModel):
    pbx: str
    linkedid: str
    part: str
    bytes: int
    state: Literal["pending"]


class LegalHoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    legal_hold: StrictBool


class LegalHoldOut(BaseModel):
    call_id: int
    legal_hold: bool
    recording_state: str


@api.route(
    "GET",
    "/api/v1/calls/{call_id}/recording",
    summary="A call's recording (audio)",
    tag="recordings",
    path_params=CALL_ID,
    query=RecordingQuery,
    responses={200: None, 206: None, 404: None, 410: None, 416: None},
    extra_content={
        200: {f.mime_type: {"schema": {"type": "string", "format": "binary"}} for f in FORMATS.values()},
        206: {f.mime_type: {"schema": {"type": "string", "format": "binary"}} for f in FORMATS.values()},
    },
    headers={
        "Range": {
            "type": "string",
            "pattern": RANGE_PATTERN,
            "description": "one byte range, e.g. bytes=0-65535, bytes=1000- or bytes=-500",
        }
    },
    description="Opus in Ogg (or MP3, as `[recordings] format` says). Range requests are answered 206, "
    "so a browser's audio element can seek; a range that starts past the end or ends before it starts "
    "is answered 416 with `Content-Range: bytes */<size>`. "
    "`side=customer|manager` plays one direction of a split recording. Every request is written to the "
    "audit log. A manager token hears only its own calls. 404 `recording_pending` while the PBX's file "
    "is being taken, 410 once retention deleted the audio.",
)
async def get_recording(request: web.Request, ctx: Context) -> web.StreamResponse:
    call_id = int(request.match_info["call_id"])
    side = ctx.query_as(RecordingQuery).side
    principal = ctx.caller
    async with request.app[SESSIONS]() as session:
        # Asked again for every Range a player seeks to: the record only, not its channels.
        manager = Audience.of(principal).call_manager
        stored = await get_call(session, call_id, manager=manager, with_legs=False)
        if stored is None:
            raise NotFound(f"no call {call_id}")
        recording = (await recordings_of_calls(session, [call_id])).get(call_id)
    state = recording_state_of(recording, stored.call.recording_file is not None)
    if recording is None or not recording.is_ready:
        if state == RecordingState.DELETED.value:
            raise Gone(f"the recording of call {call_id} was deleted by the retention policy")
        raise _RecordingNotFound(state, call_id)
    name = side or "mix"
    stored_file = recording.files.get(name)
    if stored_file is None:
        raise NotFound(f"call {call_id} was not recorded with separate sides", {"sides": []})
    store = RecordingStore(request.app[SETTINGS].recordings.storage_dir)
    try:
        path = store.path_of(stored_file)
    except PathRefused as exc:
        raise NotFound(f"no recording for call {call_id}") from exc
    size = await asyncio.to_thread(_size_of, path)
    if size is None:
        log.error("recording_file_lost", call_id=call_id, path=stored_file.path)
        raise NotFound(f"the recording of call {call_id} is not in the store")
    async with request.app[SESSIONS].begin() as session:
        await record_access(
            session, principal, "recording.read", "call", f"{call_id}:{name}"[:64], request.remote
        )
    _check_range(request, size)  # after the audit: every request for audio is written down, served or not
    log.info("recording_read", call_id=call_id, side=name, token_id=principal.token_id)
    return web.FileResponse(
        path,
        chunk_size=256 * 1024,
        headers={
            "Content-Type": FORMATS[recording.format].mime_type if recording.format in FORMATS else AUDIO,
            "Cache-Control": "private, no-store",
            "Accept-Ranges": "bytes",
            "X-Content-SHA256": stored_file.sha256,
        },
    )


def _size_of(path: Path) -> int | None:
    try:
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None


def _check_range(request: web.Request, size: int) -> None:
    """Refuse (416, as the JSON error every other refusal is) the ranges aiohttp's FileResponse would
    refuse with a bare 416: one it cannot read, or one that starts at or past the end."""
    try:
        wanted = request.http_range
    except ValueError as exc:
        raise _unsatisfiable(size) from exc
    is_suffix = wanted.start is not None and wanted.start < 0 and wanted.stop is None
    if wanted.start is not None and not is_suffix and wanted.start >= size:
        raise _unsatisfiable(size)


def _unsatisfiable(size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(
        f"the range cannot be served from a file of {size} bytes",
        {"bytes": size},
        headers={"Content-Range": f"bytes */{size}"},
    )


class _RecordingNotFound(NotFound):
    def __init__(self, state: str, call_id: int) -> None:
        code = {"pending": "recording_pending", "missing": "recording_missing"}.get(
            state, "recording_not_found"
        )
        super().__init__(f"call {call_id} has no playable recording ({state})", {"recording_state": state})
        self.code = code


@api.route(
    "PUT",
    "/api/v1/recordings/{pbx}/{linkedid}",
    summary="Push a recording from the PBX",
    tag="recordings",
    roles=[Role.ADMIN, Role.INTEGRATION],
    path_params={
        "pbx": {"type": "string", "pattern": SAFE_NAME.pattern},
        # The store's own rule for the names it files under (no "..").
        "linkedid": {"type": "string", "pattern": CALL_KEY.pattern, "maxLength": MAX_NAME},
    },
    query=PushQuery,
    upload="application/octet-stream",
    responses={202: PushAccepted, 404: None},
    description="For a PBX on another host: its MixMonitor post-command uploads the file (the body is the "
    "file as written, any format ffmpeg reads), e.g. `curl -fsS -T ^{MIXMONITOR_FILENAME} -H "
    "'Authorization: Bearer ...' http://calltracking:8080/api/v1/recordings/office/${CHANNEL(linkedid)}`. "
    "Streamed to disk, at most `[recordings] max_push_bytes`. The call's recording is converted once no "
    "part has arrived for the settle delay; pushing a part again replaces it.",
)
async def push_recording(request: web.Request, ctx: Context) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    pbx, linkedid = request.match_info["pbx"], request.match_info["linkedid"]
    part = Part(ctx.query_as(PushQuery).part)
    if pbx not in {p.name for p in settings.pbxs}:
        raise NotFound(f"no PBX named {pbx[:64]!r}")
    store = RecordingStore(settings.recordings.storage_dir)
    try:
        store.inbox_for(pbx, linkedid)  # the store's own rule for names it files under
    except PathRefused as exc:
        raise InvalidRequest("linkedid is not an Asterisk call id", {"linkedid": linkedid[:64]}) from exc
    limit = settings.recordings.max_push_bytes
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"a recording may have at most {limit} bytes")
    upload = await asyncio.to_thread(store.upload_file)
    try:
        size = await _receive(request, upload, limit)
        if size == 0:
            raise InvalidRequest("the body is empty: send the recording file")
        await asyncio.to_thread(store.accept_push, pbx, linkedid, part, upload)
    finally:
        await asyncio.to_thread(upload.unlink, True)
    now = utc_now()
    async with request.app[SESSIONS].begin() as session:
        await register_push(
            session, pbx, linkedid, due_at=now + timedelta(seconds=settings.recordings.settle_seconds)
        )
    worker = request.app.get(RECORDING_WORKER)
    if worker is not None:
        worker.wake()
    log.info("recording_pushed", pbx=pbx, linkedid=linkedid, part=part.value, bytes=size)
    body = PushAccepted(pbx=pbx, linkedid=linkedid, part=part.value, bytes=size, state="pending")
    return web.json_response(text=body.model_dump_json(), status=202)


async def _receive(request: web.Request, target: Path, limit: int) -> int:
    size = 0
    pending: list[bytes] = []
    pending_size = 0
    with target.open("wb") as handle:
        async for chunk in request.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"a recording may have at most {limit} bytes")
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size >= UPLOAD_CHUNK:
                await asyncio.to_thread(handle.write, b"".join(pending))
                pending, pending_size = [], 0
        if pending:
            await asyncio.to_thread(handle.write, b"".join(pending))
    return size


@api.route(
    "PUT",
    "/api/v1/calls/{call_id}/legal-hold",
    summary="Put a call's recording on legal hold (or release it)",
    tag="recordings",
    roles=[Role.ADMIN, Role.SUPERVISOR],
    path_params=CALL_ID,
    body=LegalHoldIn,
    responses={200: LegalHoldOut, 404: None},
    description="A call on hold keeps its audio past the retention age until the hold is released. Audited.",
)
async def put_legal_hold(request: web.Request, ctx: Context) -> web.StreamResponse:
    call_id = int(request.match_info["call_id"])
    hold = ctx.body_as(LegalHoldIn).legal_hold
    async with request.app[SESSIONS].begin() as session:
        if not await set_legal_hold(session, call_id, hold):
            raise NotFound(f"no call {call_id}")
        await record_access(
            session,
            ctx.caller,
            "legal_hold.set" if hold else "legal_hold.release",
            "call",
            str(call_id),
            request.remote,
        )
        stored = await get_call(session, call_id, with_legs=False)
        recording = (await recordings_of_calls(session, [call_id])).get(call_id)
    has_file = stored is not None and stored.call.recording_file is not None
    log.info("legal_hold_changed", call_id=call_id, legal_hold=hold, token_id=ctx.caller.token_id)
    out = LegalHoldOut(
        call_id=call_id, legal_hold=hold, recording_state=recording_state_of(recording, has_file)
    )
    return web.json_response(text=out.model_dump_json())
