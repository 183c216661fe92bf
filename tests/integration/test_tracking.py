"""Call tracking on both databases: the website's number pool over real HTTP (with a fake clock), every
call attributed as it is written, and the report per source on hand-counted data."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from api.status import ServiceStatus
from calltracking.calls.record import CallRecord, CallStatus, Direction
from calltracking.calls.repository import save_calls
from calltracking.config import CrmSettings, Settings, TrackingSettings, load_settings
from calltracking.crm.call_matching import CallMatcher
from calltracking.crm.mirror import DealIn, LeadIn
from calltracking.crm.repository import upsert_deals, upsert_parties
from calltracking.metrics import ApiMetrics
from calltracking.store.tables import CallRow, EntityRow
from calltracking.tracking.attributor import CallAttributor
from calltracking.tracking.pool import Visit
from calltracking.tracking.pool_repository import claim_free_number, hold_visitor, start_session
from calltracking.tracking.service import NumberPool
from tests.helpers.api import tokens_for_every_role
from tests.helpers.factories import T0, make_call

P1, P2, P3 = "+74952220001", "+74952220002", "+74952220003"
FALLBACK = "+74952229999"
TTL = 600
ADMIN, INTEGRATION, SUPERVISOR, MANAGER = "admin", "integration", "supervisor", "manager"
SESSIONS_PATH = "/api/v1/tracking/sessions"


def tracking_settings(numbers: Sequence[str] = (P1,), fallback: str | None = FALLBACK) -> dict[str, Any]:
    return {
        "dids": {"74951110001": {"source": "google", "medium": "cpc", "campaign": "winter"}},
        "pool": {
            "numbers": list(numbers),
            "fallback_number": fallback,
            "ttl_seconds": TTL,
            "sessions_per_minute": 60,
        },
        "target_talk_seconds": 30,
    }


@dataclass
class Site:
    """The API with a number pool whose clock the test moves."""

    client: TestClient[Any, Any]
    sessions: async_sessionmaker[AsyncSession]
    tokens: dict[str, str]
    settings: Settings
    metrics: ApiMetrics
    now: datetime

    def at(self, seconds: float) -> None:
        self.now = T0 + timedelta(seconds=seconds)

    async def visit(self, visitor_id: str, role: str = INTEGRATION, status: int = 200, **utm: str) -> Any:
        response = await self.client.post(
            SESSIONS_PATH, json={"visitor_id": visitor_id, **utm}, headers=self.auth(role)
        )
        assert response.status == status, await response.text()
        return await response.json()

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    async def write(self, *calls: CallRecord, crm: CrmSettings | None = None) -> None:
        await write(self.sessions, self.settings.tracking, calls, crm)


async def write(
    sessions: async_sessionmaker[AsyncSession],
    tracking: TrackingSettings,
    calls: Sequence[CallRecord],
    crm: CrmSettings | None = None,
) -> None:
    """One batch, as the call log writes it: attributed, stored, then (if `crm`) matched."""
    async with sessions.begin() as session:
        stamped = await CallAttributor(tracking)(session, calls)
        ids = await save_calls(session, stamped)
        if crm is not None:
            await CallMatcher(crm, tracking)(session, stamped, ids)


async def stored(sessions: async_sessionmaker[AsyncSession], *calls: CallRecord) -> list[Any]:
    async with sessions() as session:
        rows = {
            row.pbx_call_id: row
            for row in (
                await session.execute(
                    select(CallRow).where(CallRow.pbx_call_id.in_([c.pbx_call_id for c in calls]))
                )
            ).scalars()
        }
    return [rows[call.pbx_call_id] for call in calls]


OpenSite = Callable[..., Awaitable[Site]]


@pytest.fixture
async def open_site(database_url: str, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[OpenSite]:
    """`await open_site(numbers, fallback)`: the API on this test's database, with that pool."""
    tokens = await tokens_for_every_role(sessions)
    async with AsyncExitStack() as stack:

        async def open_with(numbers: Sequence[str] = (P1,), fallback: str | None = FALLBACK) -> Site:
            settings = load_settings(
                environ={},
                overrides={
                    "pbxs": [{"name": "office"}, {"name": "branch"}],
                    "database": {"url": database_url},
                    "api": {"token_cache_seconds": 0},
                    "tracking": tracking_settings(numbers, fallback),
                },
            )
            metrics = ApiMetrics()
            site = Site(None, sessions, tokens, settings, metrics, T0)  # type: ignore[arg-type]
            pool = NumberPool(
                sessions,
                settings.tracking.pool,
                clock=lambda: site.now,
                on_exhausted=metrics.tracking_pool_exhausted.inc,
            )
            app = create_app(
                settings, sessions, ServiceStatus(), metrics=metrics, number_pool=pool, clock=lambda: 0.0
            )
            site.client = TestClient(TestServer(app))
            await site.client.start_server()
            stack.push_async_callback(site.client.close)
            return site

        yield open_with


# The website's number pool.


async def test_a_freed_number_goes_to_the_next_visitor_and_each_call_to_its_own_visit(
    open_site: OpenSite,
) -> None:
    site = await open_site(numbers=(P1,))
    first = await site.visit("visitor-1", utm_source="google", utm_medium="cpc", utm_campaign="winter")
    assert (first["number"], first["is_fallback"]) == (P1, False)

    site.at(60)  # visitor 1 holds the only number: visitor 2 is shown the fallback
    waiting = await site.visit("visitor-2", utm_source="yandex", utm_medium="cpc", utm_campaign="brand")
    assert (waiting["number"], waiting["is_fallback"]) == (FALLBACK, True)

    site.at(TTL + 100)  # visitor 1's reservation ran out
    second = await site.visit("visitor-2", utm_source="yandex", utm_medium="cpc", utm_campaign="brand")
    assert (second["number"], second["is_fallback"]) == (P1, False)
    assert second["session_id"] not in (first["session_id"], waiting["session_id"])

    # Calls to the number (as the carrier sends it), at 5 min, at 11 min (nobody held it), at 13 min.
    calls = [
        make_call(5, did="74952220001", caller_number="+79161110001"),
        make_call(11, did="74952220001", caller_number="+79161110002"),
        make_call(13, did="74952220001", caller_number="+79161110003"),
        make_call(2, did="74952229999", caller_number="+79161110004"),  # the fallback: nobody's visit
    ]
    await site.write(*calls)
    rows = await stored(site.sessions, *calls)
    assert [(r.source, r.medium, r.campaign, r.tracking_session_id) for r in rows] == [
        ("google", "cpc", "winter", first["session_id"]),
        (None, None, None, None),
        ("yandex", "cpc", "brand", second["session_id"]),
        (None, None, None, None),
    ]
    # The call history shows where each call came from, and its flags.
    shown = await site.client.get(f"/api/v1/calls/{rows[2].id}", headers=site.auth(SUPERVISOR))
    view = await shown.json()
    assert (view["source"], view["campaign"], view["tracking_session_id"]) == (
        "yandex",
        "brand",
        second["session_id"],
    )
    assert (view["first_time_caller"], view["is_target"]) == (True, False)


async def test_the_least_recently_reserved_free_number_is_handed_out(open_site: OpenSite) -> None:
    site = await open_site(numbers=(P3, P1, P2))
    given = []
    for second, visitor in enumerate(("a", "b", "c")):
        site.at(second * 10)
        given.append((await site.visit(visitor))["number"])
    assert given == [P1, P2, P3]  # never reserved: in number order
    site.at(30)
    assert (await site.visit("a"))["number"] == P1  # a renews: P1 was reserved last now

    site.at(3 * TTL)  # everything is free again
    assert [(await site.visit(visitor))["number"] for visitor in ("d", "e", "f")] == [P2, P3, P1]


async def test_visitors_asking_at_once_never_share_a_number(open_site: OpenSite) -> None:
    numbers = tuple(f"+7495222001{n}" for n in range(6))
    site = await open_site(numbers=numbers)
    given = await asyncio.gather(*(site.visit(f"visitor-{n}", role=ADMIN) for n in range(8)))
    pooled = sorted(answer["number"] for answer in given if not answer["is_fallback"])
    assert pooled == sorted(numbers)
    assert [answer["number"] for answer in given if answer["is_fallback"]] == [FALLBACK, FALLBACK]


async def test_a_visitors_second_request_waits_for_its_first(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Two page views of a first visit at once must give one session: the second request waits until the
    first has written its session, then finds it and keeps its number."""
    settings = TrackingSettings.model_validate(tracking_settings((P1, P2)))
    pool = NumberPool(sessions, settings.pool, clock=lambda: T0)
    await pool.reserve(Visit(visitor_id="someone-else"))
    until = T0 + timedelta(seconds=settings.pool.ttl_seconds)
    async with sessions() as first, first.begin():
        # The first request, half done: it holds the visitor and has claimed a number.
        await hold_visitor(first, "visitor-x")
        number = await claim_free_number(first, settings.pool.numbers, T0, until)
        assert number is not None
        session_id = await start_session(first, Visit(visitor_id="visitor-x"), number, False, T0, until)
        second = asyncio.create_task(pool.reserve(Visit(visitor_id="visitor-x")))
        done, _ = await asyncio.wait({second}, timeout=0.5)
        assert not done, "the second request went ahead while the first held the visitor"
    reservation = await second
    assert reservation is not None
    assert (reservation.session_id, reservation.number) == (session_id, number)


async def test_an_exhausted_pool_shows_the_fallback_and_counts_it(open_site: OpenSite) -> None:
    site = await open_site(numbers=(P1,))
    await site.visit("a")
    site.at(10)
    shown = await site.visit("b")
    site.at(20)
    again = await site.visit("b")  # the same fallback session, renewed
    assert (shown["is_fallback"], again["session_id"], again["number"]) == (
        True,
        shown["session_id"],
        FALLBACK,
    )
    assert again["expires_at"] > shown["expires_at"]
    metrics = await site.client.get("/metrics", headers=site.auth(ADMIN))
    assert "calltracking_tracking_pool_exhausted_total 2.0" in await metrics.text()

    bare = await open_site(numbers=(P1,), fallback=None)
    response = await bare.client.post(SESSIONS_PATH, json={"visitor_id": "c"}, headers=bare.auth(ADMIN))
    assert (response.status, (await response.json())["error"]["code"]) == (409, "tracking_pool_exhausted")


async def test_a_visitor_asking_again_keeps_its_number_and_pushes_the_expiry(open_site: OpenSite) -> None:
    site = await open_site(numbers=(P1,))
    first = await site.visit("a", utm_source="google")
    site.at(TTL - 100)
    renewed = await site.visit("a", utm_source="google")
    assert (renewed["session_id"], renewed["number"]) == (first["session_id"], P1)
    assert datetime.fromisoformat(renewed["expires_at"]) == T0 + timedelta(seconds=2 * TTL - 100)

    site.at(TTL + 50)  # past the first expiry, within the renewed one
    assert (await site.visit("b"))["is_fallback"] is True
    call = make_call(11, did=P1)  # 660 s: held by the renewed session
    await site.write(call)
    (row,) = await stored(site.sessions, call)
    assert (row.source, row.tracking_session_id) == ("google", first["session_id"])


async def test_only_admins_and_integrations_get_numbers(open_site: OpenSite) -> None:
    site = await open_site()
    for role in (MANAGER, SUPERVISOR):
        body = await site.visit("a", role=role, status=403)
        assert body["error"]["code"] == "forbidden"
    anonymous = await site.client.post(SESSIONS_PATH, json={"visitor_id": "a"})
    assert anonymous.status == 401
    assert (await site.visit("a", role=ADMIN))["number"] == P1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"visitor_id": ""},
        {"visitor_id": "a b"},
        {"visitor_id": "x" * 129},
        {"visitor_id": 7},
        {"visitor_id": "a", "utm_source": "bad\x00byte"},
        {"visitor_id": "a", "utm_source": "s" * 129},
        {"visitor_id": "a", "landing_page": "p" * 2049},
        {"visitor_id": "a", "unknown": "field"},
        {"visitor_id": "a", "utm_source": {"nested": 1}},
        ["visitor_id"],
    ],
)
async def test_a_hostile_body_is_a_422_with_the_error_shape(open_site: OpenSite, body: Any) -> None:
    site = await open_site()
    response = await site.client.post(SESSIONS_PATH, json=body, headers=site.auth(INTEGRATION))
    assert (response.status, (await response.json())["error"]["code"]) == (422, "invalid_request")


async def test_a_body_that_is_not_json_is_refused(open_site: OpenSite) -> None:
    site = await open_site()
    for data in (b"{nope", rb'{"visitor_id": "\ud800"}', b"[" * 100 + b"]" * 100):
        response = await site.client.post(
            SESSIONS_PATH, data=data, headers={**site.auth(INTEGRATION), "Content-Type": "application/json"}
        )
        assert (response.status, (await response.json())["error"]["code"]) == (422, "invalid_request")


async def test_number_requests_are_rate_limited_per_token(open_site: OpenSite) -> None:
    site = await open_site(numbers=(P1, P2))
    for n in range(10):  # 60 a minute: bursts of 10, and the clock stands still
        await site.visit(f"v{n}")
    limited = await site.visit("v10", status=429)
    assert limited["error"]["code"] == "rate_limited"
    assert (await site.visit("v10", role=ADMIN))["number"] == FALLBACK  # another token's own bucket


# Attribution, as each batch of calls is written.

TRACKING = TrackingSettings.model_validate(tracking_settings(numbers=(P1, P2)))
IVAN, OLGA = "+79161234567", "+79035550101"


async def test_a_did_that_is_not_in_the_pool_gives_its_own_source(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    calls = [
        make_call(1, did="+7 495 111-00-01"),
        make_call(2, did="74950000000"),
        make_call(3, did=P2),  # a pool number nobody held
        make_call(4, direction=Direction.OUTBOUND, did=None, callee_number=OLGA),
    ]
    await write(sessions, TRACKING, calls)
    rows = await stored(sessions, *calls)
    assert [(r.source, r.medium, r.campaign, r.customer_number) for r in rows] == [
        ("google", "cpc", "winter", IVAN),
        (None, None, None, IVAN),
        (None, None, None, IVAN),
        (None, None, None, OLGA),
    ]
    assert [(r.first_time_caller, r.is_target) for r in rows] == [
        (True, False),
        (False, False),
        (False, False),
        (None, None),
    ]


async def test_first_time_flags_hold_whatever_order_the_calls_are_written_in(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    at_10, at_5, at_20, at_1 = (make_call(n, caller_number=IVAN) for n in (10, 5, 20, 1))
    outbound_first = make_call(0, direction=Direction.OUTBOUND, callee_number=IVAN, did=None)
    nobody = make_call(2, caller_number=None)

    async def flags() -> list[bool | None]:
        return [row.first_time_caller for row in await stored(sessions, at_1, at_5, at_10, at_20)]

    await write(sessions, TRACKING, [at_10, outbound_first])
    await write(sessions, TRACKING, [at_5])  # written late, started earlier: at_10 is no longer first
    rows = await stored(sessions, at_5, at_10)
    assert [row.first_time_caller for row in rows] == [True, False]

    await write(sessions, TRACKING, [at_10])  # a replay changes nothing
    await write(sessions, TRACKING, [at_5])
    assert [row.first_time_caller for row in await stored(sessions, at_5, at_10)] == [True, False]

    await write(sessions, TRACKING, [at_20, at_1, nobody])
    assert await flags() == [True, False, False, False]
    (no_number,) = await stored(sessions, nobody)
    assert no_number.first_time_caller is None
    await write(sessions, TRACKING, [at_1, at_5, at_10, at_20])
    assert await flags() == [True, False, False, False]


async def test_a_target_call_talks_longer_than_the_threshold(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    calls = [
        make_call(1, talk_seconds=30.0),
        make_call(2, talk_seconds=31.0),
        make_call(3, status=CallStatus.MISSED, talk_seconds=0.0, answered_at=None, answered_by=None),
    ]
    await write(sessions, TRACKING, calls)
    assert [row.is_target for row in await stored(sessions, *calls)] == [False, True, False]


async def test_a_lead_from_a_pool_call_carries_the_visits_utm(open_site: OpenSite) -> None:
    site = await open_site(numbers=(P1,))
    await site.visit("a", utm_source="facebook", utm_medium="social", utm_campaign="spring")
    await site.write(make_call(1, did=P1, caller_number=IVAN), crm=CrmSettings())
    async with site.sessions() as session:
        lead = (await session.execute(select(EntityRow).where(EntityRow.kind == "lead"))).scalar_one()
    assert (lead.source, lead.medium, lead.campaign) == ("facebook", "social", "spring")


# The report per source.

X, Y, Z = "+79161110001", "+79161110002", "+79161110003"
REPORT_PATH = "/api/v1/reports/sources"


async def fill_report_data(site: Site) -> None:
    """Hand-counted: on 2026-11-22 (UTC) yandex/cpc/brand brings X twice (once first ever, once missed),
    google/cpc/winter brings Y (who called the day before), and Z calls an unknown DID."""
    await site.visit("visitor-x", utm_source="yandex", utm_medium="cpc", utm_campaign="brand")
    crm = CrmSettings()
    await site.write(
        make_call(-24 * 60, did="74951110001", caller_number=Y, talk_seconds=100.0), crm=crm
    )  # the day before: Y's lead and first call
    await site.write(
        make_call(1, did="74952220001", caller_number=X, talk_seconds=60.0),
        make_call(2, did="74952220001", caller_number=X, status=CallStatus.MISSED, talk_seconds=0.0),
        make_call(3, did="74951110001", caller_number=Y, talk_seconds=10.0),
        make_call(4, did="74950000000", caller_number=Z, talk_seconds=45.0),
        make_call(5, direction=Direction.OUTBOUND, did=None, callee_number=X),
        crm=crm,
    )
    deals = [
        DealIn(
            external_id="d-x",
            lead="ct-79161110001",
            is_won=True,
            amount=Decimal("1000.00"),
            closed_at=T0 + timedelta(days=1),
        ),
        DealIn(
            external_id="d-y-old",
            lead="ct-79161110002",
            is_won=True,
            amount=Decimal("70"),
            closed_at=T0 - timedelta(hours=1),
        ),
        DealIn(
            external_id="d-y",
            lead="ct-79161110002",
            is_won=True,
            amount=Decimal("500"),
            closed_at=T0 + timedelta(hours=2),
        ),
        DealIn(
            external_id="d-z",
            lead="ct-79161110003",
            is_won=False,
            amount=Decimal("9"),
            closed_at=T0 + timedelta(hours=2),
        ),
    ]
    async with site.sessions.begin() as session:
        await upsert_deals(session, deals, T0)
        # The CRM adopts X's lead (sends it back with its own fields): it is still a lead from a call.
        adopted = LeadIn(
            external_id="ct-79161110001",
            name="X",
            phones=[X],
            source="yandex",
            medium="cpc",
            campaign="brand",
        )
        await upsert_parties(session, [adopted], "RU", T0)


def line(source: str | None, medium: str | None, campaign: str | None, *figures: Any) -> dict[str, Any]:
    names = (
        "calls",
        "answered",
        "missed",
        "missed_share",
        "target_calls",
        "unique_callers",
        "first_time_callers",
        "leads",
        "deals_won",
        "amount_won",
    )
    return {
        "source": source,
        "medium": medium,
        "campaign": campaign,
        **dict(zip(names, figures, strict=True)),
    }


async def test_the_history_marks_each_callers_first_call_of_the_period(open_site: OpenSite) -> None:
    site = await open_site(numbers=(P1,))
    await fill_report_data(site)
    november_22 = {"from": "2026-11-22T00:00:00Z", "to": "2026-11-23T00:00:00Z", "sort": "started_at"}
    response = await site.client.get("/api/v1/calls", params=november_22, headers=site.auth(SUPERVISOR))
    calls = (await response.json())["items"]
    customer = {"inbound": "caller_number", "outbound": "callee_number"}
    marks = [(c["direction"], c[customer[c["direction"]]], c["unique_in_period"]) for c in calls]
    # X twice (its first call of the day is unique), Y once (its call the day before is another period's),
    # Z once; the outbound call is no caller's.
    assert marks == [
        ("inbound", X, True),
        ("inbound", X, False),
        ("inbound", Y, True),
        ("inbound", Z, True),
        ("outbound", X, None),
    ]
    unbounded = await site.client.get("/api/v1/calls", headers=site.auth(SUPERVISOR))
    assert {c["unique_in_period"] for c in (await unbounded.json())["items"]} == {None}


async def test_the_source_report_counts_what_each_source_brought(open_site: OpenSite) -> None:
    site = await open_site(numbers=(P1,))
    await fill_report_data(site)
    response = await site.client.get(
        REPORT_PATH,
        params={"from": "2026-11-22", "to": "2026-11-22", "tz": "UTC"},
        headers=site.auth(SUPERVISOR),
    )
    assert response.status == 200, await response.text()
    report = await response.json()
    assert report["period"] == {"from": "2026-11-22T00:00:00Z", "to": "2026-11-23T00:00:00Z", "tz": "UTC"}
    assert report["lines"] == [
        line("yandex", "cpc", "brand", 2, 1, 1, 0.5, 1, 1, 1, 1, 1, "1000.00"),
        line("google", "cpc", "winter", 1, 1, 0, 0.0, 0, 1, 0, 0, 1, "500.00"),
        line(None, None, None, 1, 1, 0, 0.0, 1, 1, 1, 1, 0, "0.00"),
    ]
    assert report["total"] == line(None, None, None, 4, 3, 1, 0.25, 2, 3, 2, 2, 2, "1500.00")

    # Kiritimati's (UTC+14) 22 November is 10:00 UTC on the 21st to 10:00 UTC on the 22nd: only Y's first
    # call, its lead, and both of Y's won deals closed after it.
    east = await site.client.get(
        REPORT_PATH,
        params={"from": "2026-11-22", "to": "2026-11-22", "tz": "Pacific/Kiritimati"},
        headers=site.auth(ADMIN),
    )
    assert (await east.json())["lines"] == [
        line("google", "cpc", "winter", 1, 1, 0, 0.0, 1, 1, 1, 1, 2, "570.00")
    ]
    other_pbx = await site.client.get(
        REPORT_PATH,
        params={"from": "2026-11-01", "to": "2026-11-30", "pbx": "branch"},
        headers=site.auth(ADMIN),
    )
    assert (await other_pbx.json())["lines"] == []


async def test_the_source_report_as_csv_and_who_may_read_it(open_site: OpenSite) -> None:
    site = await open_site(numbers=(P1,))
    await site.visit("visitor-x", utm_source="=HYPERLINK(1)")
    await site.write(make_call(1, did=P1, caller_number=X))
    params = {"from": "2026-11-22T12:00Z", "to": "2026-11-22T12:15Z", "tz": "UTC"}
    response = await site.client.get(
        REPORT_PATH, params=params, headers={**site.auth(INTEGRATION), "Accept": "text/csv"}
    )
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [(row["source"], row["calls"]) for row in rows] == [("'=HYPERLINK(1)", "1"), ("", "1")]

    forbidden = await site.client.get(REPORT_PATH, params=params, headers=site.auth(MANAGER))
    assert (forbidden.status, (await forbidden.json())["error"]["code"]) == (403, "forbidden")
    assert (await site.client.get(REPORT_PATH, params=params)).status == 401
    for bad in (
        {**params, "from": "2026-02-30"},
        {**params, "tz": "Mars/Olympus"},
        {**params, "from": "2026-11-22T12:07Z"},
        {"from": "2026-11-23", "to": "2026-11-22"},
    ):
        refused = await site.client.get(REPORT_PATH, params=bad, headers=site.auth(ADMIN))
        assert (refused.status, (await refused.json())["error"]["code"]) == (422, "invalid_request")
