"""Duplicates: contacts and leads sharing a number, and merging them into one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from api.crm_schemas import EntityOut
from api.cursors import MAX_ID
from api.errors import ApiError, Conflict, InvalidRequest, NotFound
from api.keys import SESSIONS, SETTINGS
from api.operations import Api, Context
from api.schemas import whole_number
from calltracking.access.tokens import Role
from calltracking.calls.record import EntityKind
from calltracking.crm.duplicate_repository import list_duplicate_groups
from calltracking.crm.merge_service import merge_entities
from calltracking.crm.merging import (
    MAX_MERGED,
    DuplicateGroup,
    DuplicateMember,
    MergeConflict,
    MergeEntityNotFound,
    MergeRefused,
    MergeResult,
)
from calltracking.crm.mirror import EntityOrigin

api = Api()
TAG = "duplicates"
CURSOR_PATTERN = r"^\+?[0-9]{1,31}$"
# JSON Schema's integer (what the document says) includes 2.0; a string or a boolean is not one.
EntityId = Annotated[int, Field(strict=True, ge=1, le=MAX_ID), BeforeValidator(whole_number)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DuplicateQuery(_Model):
    limit: int = Field(default=50, ge=1, le=500, description="numbers (groups) per page")
    cursor: str | None = Field(
        default=None, pattern=CURSOR_PATTERN, description="next_cursor of the previous page"
    )


class DuplicateMemberOut(_Model):
    id: int = Field(description="the internal id, as a merge names it")
    kind: EntityKind
    external_id: str
    name: str | None
    owner: str | None
    origin: EntityOrigin = Field(description="crm: sent by the CRM; call: created here for a caller")
    created_at: datetime

    @classmethod
    def of(cls, member: DuplicateMember) -> DuplicateMemberOut:
        return cls(
            id=member.id,
            kind=member.kind,
            external_id=member.external_id,
            name=member.name,
            owner=member.owner,
            origin=member.origin,
            created_at=member.created_at,
        )


class DuplicateGroupOut(_Model):
    number: str = Field(description="the shared number, E.164")
    members: list[DuplicateMemberOut]

    @classmethod
    def of(cls, group: DuplicateGroup) -> DuplicateGroupOut:
        return cls(number=group.number, members=[DuplicateMemberOut.of(m) for m in group.members])


class DuplicatePage(_Model):
    items: list[DuplicateGroupOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")


class MergeIn(_Model):
    survivor_id: EntityId = Field(description="the contact or lead that stays")
    merged_ids: list[EntityId] = Field(
        min_length=1,
        max_length=MAX_MERGED,
        json_schema_extra={"uniqueItems": True},
        description="the contacts and leads folded into it, each once; not the survivor (409)",
    )

    @field_validator("merged_ids")
    @classmethod
    def _each_once(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("each id may be listed once")
        return value


class MovedOut(_Model):
    calls: int = Field(description="calls now matched to the survivor")
    callbacks: int = Field(description="callback tasks now on the survivor")
    deals: int = Field(description="deals now naming the survivor")
    phones: int = Field(description="numbers the survivor did not have")


class MergeOut(_Model):
    merge_id: int
    survivor: EntityOut = Field(description="the survivor after the merge, with all its phones")
    merged_ids: list[int]
    moved: MovedOut

    @classmethod
    def of(cls, result: MergeResult) -> MergeOut:
        return cls(
            merge_id=result.merge_id,
            survivor=EntityOut.of(result.survivor),
            merged_ids=list(result.merged_ids),
            moved=MovedOut(**result.moved.as_dict()),
        )


@api.route(
    "GET",
    "/api/v1/duplicates",
    summary="Contacts and leads sharing a number",
    tag=TAG,
    roles=(Role.ADMIN, Role.INTEGRATION, Role.SUPERVISOR),
    query=DuplicateQuery,
    responses={200: DuplicatePage},
    description="One group per number held by more than one active contact or lead (numbers compared in "
    "E.164, whatever format the CRM wrote them in), in number order. Companies are not listed.",
)
async def list_duplicates(request: web.Request, ctx: Context) -> web.StreamResponse:
    query = ctx.query_as(DuplicateQuery)
    after = "+" + query.cursor.lstrip("+") if query.cursor else None
    async with request.app[SESSIONS]() as session:
        groups = await list_duplicate_groups(session, after, query.limit + 1)
    page = groups[: query.limit]
    next_cursor = page[-1].number.lstrip("+") if len(groups) > query.limit else None
    body = DuplicatePage(items=[DuplicateGroupOut.of(group) for group in page], next_cursor=next_cursor)
    return web.json_response(text=body.model_dump_json())


@api.route(
    "POST",
    "/api/v1/duplicates/merge",
    summary="Merge contacts and leads into one",
    tag=TAG,
    roles=(Role.ADMIN, Role.INTEGRATION),
    body=MergeIn,
    responses={200: MergeOut, 404: None, 409: None},
    description="Calls, callback tasks, deals and phones of the merged entities move to the survivor; the "
    "merged ones become inactive, pointing at it. All or nothing, and logged. 404: an id names no entity; "
    "409: the survivor is also among `merged_ids`, an entity is a company, or an entity is no longer "
    "active (e.g. merged already); 422: the body's shape (an id repeated, none or over 100 ids).",
)
async def merge_duplicates(request: web.Request, ctx: Context) -> web.StreamResponse:
    body = ctx.body_as(MergeIn)
    try:
        result = await merge_entities(
            request.app[SESSIONS],
            body.survivor_id,
            body.merged_ids,
            ctx.caller.token_id,
            request.app[SETTINGS].crm,
            datetime.now(UTC),
        )
    except MergeRefused as exc:
        raise _api_error(exc) from exc
    return web.json_response(text=MergeOut.of(result).model_dump_json())


def _api_error(exc: MergeRefused) -> ApiError:
    details = {"ids": list(exc.ids)} if exc.ids else None
    if isinstance(exc, MergeEntityNotFound):
        return NotFound(exc.message, details)
    if isinstance(exc, MergeConflict):
        return Conflict(exc.message, details)
    return InvalidRequest(exc.message, details)
