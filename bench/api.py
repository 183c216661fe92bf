"""API latency benchmark: the CRM's busiest endpoints against a bare aiohttp handler, in the same run.

Why: the CRM calls `GET /api/v1/calls` to show call history and `POST /api/v1/calls/originate` for every
click-to-call, so their latency is what a manager feels. The absolute speed of this (shared, noisy, 2-core)
machine says little, so each figure is printed as a ratio to a baseline measured in the same run: a bare
aiohttp application whose one handler returns `{"hello": "world"}`, served the same way. This is a
measurement, never a test: it exits 0 whatever the ratios, and non-zero only when the run itself is wrong
(a non-2xx answer, a seeded count that does not match, an Originate the PBX never saw).

The server process (this one) holds, on loopback sockets:
  - a scratch PostgreSQL database (created on the server named by --database, dropped afterwards) seeded
    with --calls call records (100,000 by default) through `save_calls`, then ANALYZEd;
  - the service's own app from `api.app.create_app`, with an integration token (auth cached 5 s, as in
    production) and click-to-call through a real `PbxListener` connected to a loopback AMI peer
    (`CapturePeer`) that accepts every Originate;
  - the bare hello app.
The load runs in a child process (this script with `--load`), so the client's CPU does not come out of
the servers' share of the 2 cores. The child runs every scenario in turn, --rounds times, interleaved, each
with its own `aiohttp.ClientSession`, --warmup requests first, then --requests requests at a fixed
--concurrency, timing each request with `time.perf_counter`. Around each measured stretch the two
processes shake hands, so the server process also reports its own CPU time per request (and, with
--profile DIR, a cProfile of exactly that stretch).

    .venv/bin/python bench/api.py [--calls 100000] [--requests 500] [--rounds 3] [--concurrency 8]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and this file (api.py) would shadow the
# service's `api` package: the project root goes in front of it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pydantic
import sqlalchemy
from aiohttp import web
from harness import (  # bench/, beside this script
    BenchmarkBroken,
    emit,
    integration_token,
    percentile,
    run_script,
    served,
    stdin_lines,
)
from profiles import Profiles  # bench/, beside this script
from scratch_database import scratch_database  # bench/, beside this script
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ami.capture_peer import CapturePeer, PeerSession, frame, greeting_frames
from ami.connection import AmiConnection
from ami.listener import PbxListener
from api.app import create_app
from calltracking.calls.record import CallLeg, CallOrigin, CallRecord, CallStatus, Direction, LegKind
from calltracking.calls.repository import count_calls, save_calls
from calltracking.clicktocall.service import ClickToCallService
from calltracking.config import PbxSettings, Settings, load_settings
from calltracking.store.engine import create_engine, create_sessionmaker, migrate

DEFAULT_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
SEED_BATCH = 2000
T0 = datetime(2025, 11, 22, 0, 0, tzinfo=UTC)  # the seeded history: one year up to 2026-11-22
SPACING_SECONDS = 300  # call n starts in [T0 + n * 300 s, T0 + (n + 1) * 300 s): started_at grows with n
MANAGERS = [str(extension) for extension in range(101, 121)]
DIDS = ["74951110001", "74951110002", "74951110003", "74951110004", "74951110005"]
CUSTOMERS = 20_000  # distinct customer numbers, +79160000000 onwards
FILTER_MANAGER = "107"
FILTER_NUMBER = "+79160001234"
DEEP_FRACTION = 0.9  # the deep page starts about 90% of the way down the newest-first history
RETRY_REQUEST_ID = "bench-retry-0001"
CHILD_TIMEOUT_SECONDS = 3600.0


# --- the seeded call history ---------------------------------------------------------------------


def customer(index: int) -> str:
    return f"+7916{index:07d}"


def seeded_call(n: int, rng: random.Random) -> CallRecord:
    """Call n of the history: a mix of directions and outcomes, 20 managers, 20,000 customers."""
    started = T0 + timedelta(seconds=n * SPACING_SECONDS + rng.randrange(SPACING_SECONDS))
    extension = rng.choice(MANAGERS)
    number = customer(rng.randrange(CUSTOMERS))
    draw = rng.random()
    if draw < 0.6:
        direction, status = Direction.INBOUND, _pick(rng, {CallStatus.ANSWERED: 0.7, CallStatus.MISSED: 0.3})
        did = rng.choice(DIDS)
        caller, callee, caller_number, callee_number = number, did, number, "+" + did
    elif draw < 0.9:
        direction = Direction.OUTBOUND
        status = _pick(
            rng,
            {
                CallStatus.ANSWERED: 0.55,
                CallStatus.NO_ANSWER: 0.3,
                CallStatus.BUSY: 0.1,
                CallStatus.FAILED: 0.05,
            },
        )
        did = None
        caller, callee, caller_number, callee_number = extension, "8" + number[2:], extension, number
    else:
        direction, status = (
            Direction.INTERNAL,
            _pick(rng, {CallStatus.ANSWERED: 0.8, CallStatus.NO_ANSWER: 0.2}),
        )
        did, other = None, rng.choice(MANAGERS)  # a colleague calls `extension`
        caller, callee, caller_number, callee_number = other, extension, other, extension
    answered = status is CallStatus.ANSWERED
    outbound = direction is Direction.OUTBOUND
    sides = ("caller", "callee") if direction is Direction.INTERNAL else ("customer", "manager")
    ring = float(rng.randint(2, 25))
    talk = float(rng.randint(10, 900)) if answered else 0.0
    ended = started + timedelta(seconds=ring + talk)
    linkedid = f"{int(started.timestamp())}.{n}"
    return CallRecord(
        pbx="office",
        pbx_call_id=linkedid,
        direction=direction,
        status=status,
        origin=CallOrigin.PBX,
        caller=caller,
        callee=callee,
        did=did,
        caller_number=caller_number,
        callee_number=callee_number,
        answered_by=extension if answered and not outbound else None,
        manager=extension if answered or outbound else None,
        rang=() if outbound else (extension,),
        started_at=started,
        answered_at=started + timedelta(seconds=ring) if answered else None,
        ended_at=ended,
        ring_seconds=ring,
        talk_seconds=talk,
        hangup_by=rng.choice(sides) if answered else None,
        failure_reason="congestion" if status is CallStatus.FAILED else None,
        recording_file=f"/var/spool/asterisk/monitor/{linkedid}.wav" if answered else None,
        legs=(
            CallLeg(linkedid, f"PJSIP/provider-{n:08x}", "provider", LegKind.TRUNK, started, None, ended, 16),
        ),
    )


def _pick(rng: random.Random, weights: dict[CallStatus, float]) -> CallStatus:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


async def seed(sessions: async_sessionmaker[AsyncSession], calls: int) -> float:
    """Writes the history in batches through the service's own `save_calls`; returns the seconds taken."""
    rng = random.Random(20261122)
    started = time.perf_counter()
    for first in range(0, calls, SEED_BATCH):
        batch = [seeded_call(n, rng) for n in range(first, min(first + SEED_BATCH, calls))]
        async with sessions.begin() as session:
            await save_calls(session, batch)
    async with sessions.begin() as session:
        # Production tables are analyzed by autovacuum; a freshly loaded one must be, or the planner guesses.
        await session.execute(text("ANALYZE"))
        stored = await count_calls(session)
    if stored != calls:
        raise BenchmarkBroken(f"seeded {calls} calls, the calls table holds {stored}")
    return time.perf_counter() - started


async def describe_environment(sessions: async_sessionmaker[AsyncSession]) -> str:
    async with sessions() as session:
        server = (await session.execute(text("SHOW server_version"))).scalar_one()
    return (
        f"Python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}, "
        f"SQLAlchemy {sqlalchemy.__version__}, asyncpg {asyncpg.__version__}, "
        f"pydantic {pydantic.__version__}, PostgreSQL {server}, "
        f"{os.cpu_count()} CPUs"
    )


# --- the servers ---------------------------------------------------------------------------------


def accept_originate(action: Mapping[str, str]) -> list[bytes]:
    reply = {
        "Response": "Success",
        "ActionID": action["actionid"],
        "Message": "Originate successfully queued",
    }
    return [frame(reply)]


class DiscardingSink:
    """Where the listener would hand completed calls; the peer plays no calls, so none arrive."""

    def submit(self, call: CallRecord) -> None:
        pass


@contextlib.asynccontextmanager
async def connected_pbx() -> AsyncIterator[tuple[CapturePeer, PbxSettings, AmiConnection]]:
    """A loopback AMI peer that accepts every Originate, and the service's listener logged in to it."""
    peer = CapturePeer(
        [
            PeerSession(
                greeting=greeting_frames(), close_at_end=False, action_replies={"originate": accept_originate}
            )
        ]
    )
    port = await peer.start()
    pbx = PbxSettings(name="office", port=port)
    listener = PbxListener(pbx, DiscardingSink())
    listener.start()
    try:
        try:
            async with asyncio.timeout(30):
                while not listener.connection.is_ready:
                    await asyncio.sleep(0.01)
        except TimeoutError as exc:
            raise BenchmarkBroken("the listener did not log in to the AMI peer within 30 s") from exc
        yield peer, pbx, listener.connection
    finally:
        await listener.close()
        await peer.stop()


def hello_app() -> web.Application:
    async def hello(_request: web.Request) -> web.Response:
        return web.json_response({"hello": "world"})

    app = web.Application()
    app.router.add_get("/hello", hello)
    return app


def api_settings(database_url: str, pbx: PbxSettings) -> Settings:
    return load_settings(
        environ={},
        overrides={
            "database": {"url": database_url},
            "pbxs": [pbx.model_dump()],
            "api": {"rate_limit_per_minute": 1_000_000_000, "token_cache_seconds": 5},
        },
    )


# --- the plan the load child runs ----------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    method: str
    url: str
    expect: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    dials: bool = False  # every request makes the PBX place a call


@dataclass
class Plan:
    scenarios: list[Scenario]
    requests: int
    warmup: int
    rounds: int
    concurrency: int


def build_plan(args: argparse.Namespace, hello_url: str, api_url: str, secret: str, cursor: str) -> Plan:
    auth = {"Authorization": f"Bearer {secret}"}
    calls = f"{api_url}/api/v1/calls"
    originate = f"{api_url}/api/v1/calls/originate"
    scenarios = [
        Scenario("(a) GET /hello, bare aiohttp", "GET", f"{hello_url}/hello"),
        Scenario("(b) GET /calls?limit=50", "GET", f"{calls}?limit=50", headers=auth),
        Scenario(
            "(b) GET /calls manager+status",
            "GET",
            f"{calls}?limit=50&manager={FILTER_MANAGER}&status=answered",
            headers=auth,
        ),
        Scenario(
            "(b) GET /calls?number=", "GET", f"{calls}?limit=50&number=%2B{FILTER_NUMBER[1:]}", headers=auth
        ),
        Scenario("(b) GET /calls deep cursor", "GET", f"{calls}?limit=50&cursor={cursor}", headers=auth),
        Scenario(
            "(c) POST /calls/originate",
            "POST",
            originate,
            expect=202,
            body={"extension": "101", "number": "+79161234567"},  # no request_id: a fresh one each time
            headers=auth,
            dials=True,
        ),
        Scenario(
            "(c) originate, repeated id",
            "POST",
            originate,
            expect=202,
            body={"extension": "101", "number": "+79161234567", "request_id": RETRY_REQUEST_ID},
            headers=auth,
        ),
    ]
    return Plan(scenarios, args.requests, args.warmup, args.rounds, args.concurrency)


async def deep_cursor(api_url: str, secret: str, calls: int) -> str:
    """A cursor the API itself hands out, about DEEP_FRACTION of the way down the newest-first history."""
    index = max(1, int(calls * (1 - DEEP_FRACTION)))
    before = (T0 + timedelta(seconds=index * SPACING_SECONDS)).isoformat()
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{api_url}/api/v1/calls",
            params={"limit": "1", "to": before},
            headers={"Authorization": f"Bearer {secret}"},
        ) as response,
    ):
        if response.status != 200:
            raise BenchmarkBroken(f"GET /api/v1/calls?to=... answered {response.status}")
        cursor = (await response.json())["next_cursor"]
    if not cursor:
        raise BenchmarkBroken("no next_cursor for the deep page")
    return str(cursor)


# --- the load child (--load) ---------------------------------------------------------------------


async def fire(
    session: aiohttp.ClientSession, scenario: Scenario, count: int, concurrency: int
) -> tuple[list[float], Counter[int]]:
    """`count` requests from `concurrency` workers; each request's latency, and the statuses seen."""
    data = json.dumps(scenario.body).encode() if scenario.body is not None else None
    headers = {**scenario.headers, **({"Content-Type": "application/json"} if data else {})}
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            async with session.request(scenario.method, scenario.url, data=data, headers=headers) as response:
                await response.read()
            latencies.append(time.perf_counter() - started)
            statuses[response.status] += 1

    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    return latencies, statuses


async def run_load() -> None:
    """The child: read the plan; for each round and scenario, warm up, tell the parent, wait for its go,
    measure, send the latencies."""
    parent = await stdin_lines()
    raw = json.loads(await parent.readline())
    plan = Plan(**{**raw, "scenarios": [Scenario(**s) for s in raw["scenarios"]]})
    for round_number in range(plan.rounds):
        for scenario in plan.scenarios:
            connector = aiohttp.TCPConnector(limit=plan.concurrency)
            async with aiohttp.ClientSession(connector=connector) as session:
                _, warm_statuses = await fire(session, scenario, plan.warmup, plan.concurrency)
                emit({"event": "ready", "scenario": scenario.name, "round": round_number})
                await parent.readline()
                started = time.perf_counter()
                latencies, statuses = await fire(session, scenario, plan.requests, plan.concurrency)
                seconds = time.perf_counter() - started
            emit(
                {
                    "event": "done",
                    "scenario": scenario.name,
                    "latencies": latencies,
                    "seconds": seconds,
                    "statuses": {str(k): v for k, v in (statuses + warm_statuses).items()},
                }
            )


# --- the parent's side of the load -----------------------------------------------------------------


@dataclass
class Figures:
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    server_cpu: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)


async def drive(plan: Plan, profiles: Profiles) -> dict[str, Figures]:
    """Start the load child, hand it the plan, collect its figures; BROKEN if it fails."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).resolve()),
        "--load",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    figures = {scenario.name: Figures() for scenario in plan.scenarios}
    try:
        async with asyncio.timeout(CHILD_TIMEOUT_SECONDS):
            await converse(child, plan, figures, profiles)
    except BaseException:
        # Only on failure: killing a child that already exited would reap it behind asyncio's back.
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
        await child.wait()
        raise
    code = await child.wait()
    if code != 0:
        raise BenchmarkBroken(f"the load child exited with status {code}")
    return figures


async def converse(
    child: asyncio.subprocess.Process, plan: Plan, figures: dict[str, Figures], profiles: Profiles
) -> None:
    """Answer each of the child's `ready`s: server CPU clock and profile on, `go`, off at its `done`."""
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(json.dumps(asdict(plan)).encode() + b"\n")
    while line := await child.stdout.readline():
        ready = json.loads(line)
        name = ready["scenario"]
        with profiles.active(name):
            cpu = time.process_time()
            child.stdin.write(b"go\n")
            answer = await child.stdout.readline()
            figures[name].server_cpu += time.process_time() - cpu
        if not answer:
            return  # the child died: its exit status tells
        done = json.loads(answer)
        figures[name].latencies += done["latencies"]
        figures[name].seconds += done["seconds"]
        figures[name].statuses.update({int(k): v for k, v in done["statuses"].items()})
        print(f"  round {ready['round'] + 1}: {name}: {summary_line(done)}", flush=True)


def summary_line(done: dict[str, Any]) -> str:
    latencies = sorted(done["latencies"])
    return (
        f"p50 {percentile(latencies, 50) * 1000:.2f} ms, p99 {percentile(latencies, 99) * 1000:.2f} ms, "
        f"{len(latencies) / done['seconds']:,.0f} req/s"
    )


# --- reporting -----------------------------------------------------------------------------------


def check(plan: Plan, figures: dict[str, Figures], peer: CapturePeer) -> None:
    for scenario in plan.scenarios:
        wrong = {
            status: n for status, n in figures[scenario.name].statuses.items() if status != scenario.expect
        }
        if wrong:
            raise BenchmarkBroken(f"{scenario.name}: answers other than {scenario.expect}: {wrong}")
    dialling = sum(1 for scenario in plan.scenarios if scenario.dials)
    # Every fresh request dialled once; the repeated request_id dialled once, the first time only.
    expected = dialling * plan.rounds * (plan.warmup + plan.requests) + 1
    seen = sum(1 for action in peer.actions if action.get("action", "").lower() == "originate")
    if seen != expected:
        raise BenchmarkBroken(f"the PBX saw {seen} Originate actions, expected {expected}")


def report(plan: Plan, figures: dict[str, Figures]) -> None:
    baseline = figures[plan.scenarios[0].name]
    base_sorted = sorted(baseline.latencies)
    base_p50, base_p99 = percentile(base_sorted, 50), percentile(base_sorted, 99)
    base_cpu = baseline.server_cpu / len(baseline.latencies)
    print(
        f"\n{'scenario':34} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>7} {'CPU us':>7}"
        f" {'p50 x':>6} {'p99 x':>6} {'CPU x':>6}"
    )
    for scenario in plan.scenarios:
        measured = figures[scenario.name]
        ordered = sorted(measured.latencies)
        p50, p99 = percentile(ordered, 50), percentile(ordered, 99)
        cpu = measured.server_cpu / len(ordered)
        print(
            f"{scenario.name:34} {len(ordered):8} {p50 * 1000:8.2f} {p99 * 1000:8.2f}"
            f" {len(ordered) / measured.seconds:7,.0f} {cpu * 1e6:7,.0f}"
            f" {p50 / base_p50:6.1f} {p99 / base_p99:6.1f} {cpu / base_cpu:6.1f}"
        )
    print(
        "x: ratio to (a) measured in this run. CPU us: the server process's CPU time per request "
        "(API, database driver, AMI listener and peer; PostgreSQL's own processes not included)."
    )
    mean = statistics.fmean(baseline.latencies) * 1000
    print(f"(a) mean latency {mean:.2f} ms over {len(baseline.latencies)} requests")


# --- the run -------------------------------------------------------------------------------------


async def serve_and_measure(args: argparse.Namespace) -> None:
    async with scratch_database(args.database) as url:
        engine = create_engine(url)
        try:
            await migrate(engine)
            sessions = create_sessionmaker(engine)
            seconds = await seed(sessions, args.calls)
            print(f"seeded {args.calls:,} calls in {seconds:.1f} s (save_calls, batches of {SEED_BATCH})")
            print(await describe_environment(sessions))
            secret = await integration_token(sessions)
            async with connected_pbx() as (peer, pbx, connection):
                click_to_call = ClickToCallService(sessions, [pbx], {pbx.name: connection})
                app = create_app(api_settings(url, pbx), sessions, click_to_call=click_to_call)
                async with served(hello_app()) as hello_url, served(app) as api_url:
                    cursor = await deep_cursor(api_url, secret, args.calls)
                    plan = build_plan(args, hello_url, api_url, secret, cursor)
                    print(
                        f"load: child process, concurrency {plan.concurrency}, {plan.rounds} rounds x "
                        f"({plan.warmup} warm-up + {plan.requests} measured) requests per scenario"
                    )
                    profiles = Profiles(args.profile)
                    figures = await drive(plan, profiles)
                check(plan, figures, peer)
                profiles.write()
                report(plan, figures)
        finally:
            await engine.dispose()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100_000, help="calls seeded into the scratch database")
    parser.add_argument("--requests", type=int, default=500, help="measured requests per scenario per round")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured requests before each measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds over all scenarios")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight at once")
    parser.add_argument(
        "--database",
        default=DEFAULT_DATABASE,
        help="PostgreSQL server (SQLAlchemy asyncpg URL); the run uses a scratch database on it",
    )
    parser.add_argument("--profile", type=Path, help="write a cProfile of the server per scenario here")
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)  # the child's mode
    args = parser.parse_args(argv)
    if min(args.requests, args.rounds, args.concurrency) < 1 or args.warmup < 0 or args.calls < 10:
        parser.error("--requests, --rounds and --concurrency must be positive, --calls at least 10")
    return args


def main(argv: list[str] | None = None) -> int:
    return run_script(parse_args(argv), run_load, serve_and_measure)


if __name__ == "__main__":
    sys.exit(main())
