"""The `calltracking` command: serve, migrate, replay captures, list calls, import CRM data."""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from calltracking.access.tokens import Role, new_token
from calltracking.errors import CalltrackingError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from api.schemas import CallOut
    from calltracking.config import Settings

# `--help` and argument errors import nothing heavy: each command imports what it needs when it runs, so
# the parser is up in milliseconds (not even asyncio or structlog, let alone SQLAlchemy or aiohttp).
# `calltracking.crm.mirror.ImportKind`, spelled out here for the same reason; a unit test keeps the two equal.
IMPORT_KINDS = ("managers", "contacts", "companies", "leads", "deals")

# The API's largest page (CallQuery's `limit`): `calls` reads the history a page at a time.
API_PAGE = 500

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    if not getattr(args, "reads_settings", True):
        result: int = args.handler(args)
        return result
    import asyncio

    from calltracking.logs import configure_logging

    try:
        settings = _settings(args)
        configure_logging(settings.log)
        ran: int = asyncio.run(args.handler(args, settings))
        return ran
    except CalltrackingError as exc:
        print(f"calltracking: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="calltracking", description=__doc__)
    parser.add_argument("--config", type=Path, help="TOML settings file (default: $CALLTRACKING_CONFIG)")
    parser.add_argument("--version", action=_VersionAction, help="print the installed version and exit")
    commands = parser.add_subparsers(dest="command")

    serve = commands.add_parser(
        "serve",
        help="migrate the database and listen to every configured PBX",
        description="Migrates the database, then listens to every configured PBX, logs calls and serves "
        "the API until SIGTERM/SIGINT. Settings: --config FILE or CALLTRACKING_* variables "
        "(docs/configuration.md).",
    )
    serve.set_defaults(handler=_serve)

    migrate_cmd = commands.add_parser(
        "migrate",
        help="bring the database schema up to date",
        description="Applies the database migrations that are not applied yet (serve does it too). There is "
        "no downgrade: back up before upgrading (docs/operations.md).",
    )
    migrate_cmd.add_argument("--database", help="database URL (overrides the settings)")
    migrate_cmd.set_defaults(handler=_migrate)

    doctor = commands.add_parser(
        "doctor",
        help="check the setup: database, each PBX's AMI user, recordings, ffmpeg, speech models",
        description="One line per check, with what to do about each problem. Exit 0: nothing failed "
        "(warnings allowed); 1: a check failed; 2: the settings cannot be read. Each PBX is listened to "
        "for --listen seconds: make a test call meanwhile to prove its call events arrive.",
    )
    doctor.add_argument("--database", help="database URL (overrides the settings)")
    doctor.add_argument(
        "--listen", type=float, default=5.0, metavar="SECONDS", help="listen to each PBX this long (5)"
    )
    doctor.set_defaults(handler=_doctor)

    replay = commands.add_parser(
        "replay",
        help="feed raw AMI captures through the listener (via a loopback AMI peer) into the database",
    )
    replay.add_argument("files", nargs="+", type=Path, metavar="FILE.ami", help="raw AMI captures, in order")
    replay.add_argument("--database", help="database URL (overrides the settings)")
    replay.add_argument("--recordings-dir", type=Path, help="where the PBX's monitor directory is visible")
    replay.add_argument("--pbx", help="which configured PBX the capture comes from (default: the first)")
    replay.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the database")
    replay.set_defaults(handler=_replay)

    drain = commands.add_parser(
        "drain-journal",
        help="write the calls another process's journal still owes to the database, then exit",
        description="Write the completed calls a journal (a spool directory) holds and the database does "
        "not, once each, then exit: the journal of a dead hot-standby peer, from its disk, or a data "
        "directory moved from a broken host. Refused while a live process uses that journal.",
    )
    drain.add_argument("directory", type=Path, help="the spool directory ([database] spool_dir) to drain")
    drain.add_argument("--database", help="database URL (overrides the settings)")
    drain.set_defaults(handler=_drain_journal)

    token = commands.add_parser(
        "token",
        help="API tokens: create, revoke, list",
        description="Tokens for the API and the web interface; a token's secret is shown once, at creation.",
    )
    token.add_argument("--database", help="database URL (overrides the settings)")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser("create", help="create a token; its secret is printed once")
    create.add_argument(
        "--role",
        required=True,
        choices=[role.value for role in Role],
        help="what the token may do (README: roles)",
    )
    create.add_argument("--manager", help="the manager (extension) a manager token is tied to")
    create.add_argument("--name", default="", help="what the token is for, e.g. 'CRM production'")
    create.set_defaults(handler=_token_create)
    revoke = token_commands.add_parser("revoke", help="revoke a token by id or prefix")
    revoke.add_argument("token", help="the token's id or the prefix shown at creation")
    revoke.set_defaults(handler=_token_revoke)
    listing = token_commands.add_parser("list", help="list tokens (never their secrets)")
    listing.set_defaults(handler=_token_list)

    crm_import = commands.add_parser(
        "import",
        help="load a CRM export (CSV) into the CRM mirror; prints a JSON report",
        description="Load a CSV export of CRM data (format: calltracking/crm_import.py, README). "
        "Exit 0: every row loaded; 1: some rows rejected, the others loaded; 2: the file was refused, "
        "nothing loaded.",
    )
    crm_import.add_argument("kind", choices=IMPORT_KINDS, help="what the file holds")
    crm_import.add_argument("file", type=Path, metavar="FILE.csv", help="the CSV export (README: columns)")
    crm_import.add_argument("--database", help="database URL (overrides the settings)")
    crm_import.set_defaults(handler=_import_crm)

    retention = commands.add_parser(
        "retention",
        help="delete recordings older than the retention age (calls on legal hold are kept); prints JSON",
        description="Deletes the audio of calls started more than `[recordings] retention_days` (or --days) "
        "ago; the call records stay. `serve` runs the same policy every retention_interval_seconds.",
    )
    retention.add_argument("--database", help="database URL (overrides the settings)")
    retention.add_argument("--days", type=float, help="the age in days (overrides the settings)")
    retention.add_argument(
        "--dry-run", action="store_true", help="report what would be deleted, delete nothing"
    )
    retention.set_defaults(handler=_retention)

    hold = commands.add_parser(
        "legal-hold",
        help="keep a call's recording past its retention age",
        description="Sets (or with --release lifts) a call's legal hold: retention keeps its audio and "
        "transcript while the hold lasts.",
    )
    hold.add_argument("call_id", type=int, help="the call's id (`calltracking calls`)")
    hold.add_argument("--release", action="store_true", help="release the hold")
    hold.add_argument("--database", help="database URL (overrides the settings)")
    hold.set_defaults(handler=_legal_hold)

    calls = commands.add_parser(
        "calls",
        help="list logged calls, newest first",
        description="Lists logged calls, newest first: a table, or with --json one JSON object per line, "
        "each exactly as an item of GET /api/v1/calls.",
    )
    calls.add_argument("--database", help="database URL (overrides the settings)")
    calls.add_argument("--json", action="store_true", help="one JSON object per line, as the API's items")
    calls.add_argument("--limit", type=_positive, help="at most this many calls (the newest)")
    calls.add_argument(
        "--since", type=_since, help="only calls started at or after: a date (UTC midnight) or ISO time"
    )
    calls.add_argument("--pbx", help="only this PBX's calls (its [[pbx]] name)")
    calls.set_defaults(handler=_calls)

    stats = commands.add_parser(
        "stats",
        help="per-manager stats for a period (the API's report)",
        description="Per manager, team and in total: calls, talk, answer rate, customers, leads, deals "
        "(README: Per-manager stats), as a table, JSON lines or CSV.",
    )
    stats.add_argument("--from", dest="start", help="a date (YYYY-MM-DD) or ISO time; default: this month")
    stats.add_argument("--to", dest="end", help="a date (included) or ISO time; default: today")
    stats.add_argument(
        "--tz", help="the zone days are counted in (default: [stats] timezone, else the PBX's)"
    )
    stats.add_argument("--team", help="one team's managers")
    stats.add_argument("--pbx", help="only this PBX's calls (its [[pbx]] name)")
    stats.add_argument("--business-hours", action="store_true", help="only calls in [stats] business hours")
    output = stats.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="one JSON object per line")
    output.add_argument("--csv", action="store_true", help="CSV, as the API's text/csv")
    stats.add_argument("--database", help="database URL (overrides the settings)")
    stats.set_defaults(handler=_stats)

    worker = commands.add_parser(
        "worker",
        help="transcribe stored recordings: take transcription jobs until SIGTERM/SIGINT",
        description="Runs --processes transcription workers, each a process with its own vosk models, "
        "sharing the queue with every other worker (`serve`'s too). Exit 2: a model is missing or broken.",
    )
    worker.add_argument("--processes", type=_positive, default=1, help="worker processes (default 1)")
    worker.add_argument("--once", action="store_true", help="transcribe what is due, then exit")
    worker.add_argument("--database", help="database URL (overrides the settings)")
    worker.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    worker.set_defaults(handler=_worker)

    quality = commands.add_parser(
        "quality",
        help="call quality: scores of stored transcripts",
        description="Call quality (README: Call quality).",
    )
    quality_commands = quality.add_subparsers(dest="quality_command", required=True)
    rescore = quality_commands.add_parser(
        "rescore",
        help="score stored transcripts again with the current checklist; prints JSON",
        description="Scores every stored transcript (or those of calls started at or after --since) again "
        "against `[quality] checklist`, a few hundred per transaction, without transcribing again. "
        "Running it twice writes the same scores.",
    )
    rescore.add_argument(
        "--since", type=_since, help="only calls started at or after: a date (UTC midnight) or ISO time"
    )
    rescore.add_argument("--database", help="database URL (overrides the settings)")
    rescore.set_defaults(handler=_quality_rescore)

    reference = commands.add_parser(
        "config-reference",
        help="print the configuration reference (Markdown: every section, key, type, default)",
        description="Generated from the installed version's settings object, so it is right for the "
        "version you run; the repository keeps it as docs/configuration.md. Reads no settings.",
    )
    reference.add_argument("--output", type=Path, help="write it to this file instead of stdout")
    reference.set_defaults(handler=_config_reference, reads_settings=False)
    return parser


def _since(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD) or an ISO time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def _settings(args: argparse.Namespace) -> Settings:
    from calltracking.config import load_settings

    overrides: dict[str, Any] = {}
    if getattr(args, "database", None):
        overrides["database"] = {"url": args.database}
    return load_settings(args.config, overrides=overrides)


def _config_reference(args: argparse.Namespace) -> int:
    from calltracking.app.config_reference import render_reference

    text = render_reference()
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return EXIT_OK


async def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    async with _sessions(settings):
        pass
    print("database is up to date")
    return EXIT_OK


async def _doctor(args: argparse.Namespace, settings: Settings) -> int:
    from calltracking.app.doctor import run_doctor

    return await run_doctor(settings, sys.stdout, args.listen)


async def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from calltracking.app.serve import run_service
    from calltracking.quality.checklist import checklist_in_force

    # A bad checklist stops the start with one message, not every transcript's scoring later.
    checklist_in_force(settings.quality.checklist)
    _announce_database(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await run_service(settings, stop)
    return EXIT_OK


async def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from calltracking.app.worker import child_arguments, run_worker, run_workers

    if not args.child:
        _announce_database(settings)
    if args.child or args.processes == 1:
        return await run_worker(settings, once=args.once, announce_ready=args.child)
    return await run_workers(child_arguments(args.config, args.database, args.once), args.processes)


async def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from calltracking.app.replay import ReplayIncomplete, replay_captures
    from transcription.service import transcription_queuer

    captures = []
    for path in args.files:
        try:
            captures.append(path.read_bytes())
        except OSError as exc:
            print(f"calltracking: cannot read {path}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
    pbx = settings.pbx(args.pbx) if args.pbx else settings.pbxs[0]
    if args.recordings_dir is not None:
        pbx = pbx.model_copy(update={"recordings_dir": args.recordings_dir})
    _announce_database(settings)
    spool_dir = Path(tempfile.mkdtemp(prefix="calltracking-replay-spool-"))
    try:
        calls = await replay_captures(
            captures,
            pbx,
            settings.database,
            spool_dir,
            timeout=args.timeout,
            crm=settings.crm,
            tracking=settings.tracking,
            recordings=settings.recordings,
            on_ready=[transcription_queuer(settings)],
        )
    except ReplayIncomplete as exc:
        print(f"calltracking: {exc}; unwritten calls are kept in {spool_dir}", file=sys.stderr)
        return EXIT_FAILED
    shutil.rmtree(spool_dir, ignore_errors=True)
    print(f"replayed {len(captures)} capture(s): {calls} call(s) logged", file=sys.stderr)
    return EXIT_OK


async def _drain_journal(args: argparse.Namespace, settings: Settings) -> int:
    from calltracking.app.runtime import call_pipeline
    from calltracking.calls.spool import JOURNAL

    if not (args.directory / JOURNAL).is_file():
        print(f"calltracking: no journal in {args.directory} (no {JOURNAL})", file=sys.stderr)
        return EXIT_USAGE
    _announce_database(settings)
    async with call_pipeline(
        settings.database,
        spool_dir=args.directory,
        crm=settings.crm,
        tracking=settings.tracking,
        recordings=settings.recordings,
    ) as pipeline:
        owed = pipeline.call_log.spool_depth
        await pipeline.call_log.flush()
    print(f"wrote {owed} calls from {args.directory}")
    return 0


async def _import_crm(args: argparse.Namespace, settings: Settings) -> int:
    from calltracking.crm.loading import check_csv_file, load_csv_file

    check_csv_file(args.kind, args.file)
    async with _sessions(settings) as sessions:
        report = await load_csv_file(sessions, args.kind, args.file, settings.crm)
    print(json.dumps(report.as_json()))
    return EXIT_OK if report.rejected == 0 else EXIT_FAILED


async def _calls(args: argparse.Namespace, settings: Settings) -> int:
    from api.routes.calls import call_history
    from api.schemas import CallQuery
    from api.visibility import Audience

    # The API's own history, page after page: the same calls, fields and time format as GET /api/v1/calls.
    pbx = settings.pbx(args.pbx).name if args.pbx else None  # a name no [[pbx]] has: an error, as the API's
    items: list[CallOut] = []
    cursor: str | None = None
    async with _sessions(settings) as sessions:
        while args.limit is None or len(items) < args.limit:
            wanted = API_PAGE if args.limit is None else min(API_PAGE, args.limit - len(items))
            query = CallQuery(from_=args.since, pbx=pbx, limit=wanted, cursor=cursor)
            page = await call_history(sessions, settings, query, Audience(None))
            items.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
    if args.json:
        for item in items:
            sys.stdout.write(item.model_dump_json() + "\n")
    else:
        _print_table(items, sys.stdout)
    return EXIT_OK


async def _stats(args: argparse.Namespace, settings: Settings) -> int:
    from api.spreadsheet import csv_text
    from calltracking.stats.manager_report import ReportScope, manager_report
    from calltracking.stats.managers import line_columns
    from calltracking.stats.period import BusinessHours, Period, parse_zone

    zone = parse_zone(args.tz or settings.report_timezone)
    period = Period.parse(args.start, args.end, zone.key, datetime.now(zone).date())
    scope = ReportScope(
        period=period,
        business_hours=BusinessHours.of_settings(settings.stats) if args.business_hours else None,
        pbx=settings.pbx(args.pbx).name if args.pbx else None,
        team=args.team,
    )
    async with _sessions(settings) as sessions, sessions() as session:
        report = await manager_report(session, scope)
    lines = [*report.managers, *report.teams, *([report.total] if report.total else [])]
    rows = [line_columns(line) for line in lines]
    if args.json:
        for row in rows:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    elif args.csv:
        sys.stdout.write(csv_text(rows))
    else:
        _print_stats(rows, period.view(), sys.stdout)
    return EXIT_OK


def _print_stats(rows: Sequence[dict[str, Any]], period: dict[str, str], out: TextIO) -> None:
    def share(value: float | None) -> str:
        return "-" if value is None else f"{value:.0%}"

    header = (
        "MANAGER",
        "TEAM",
        "IN",
        "ANSWERED",
        "MISSED",
        "OUT",
        "TALK",
        "CUSTOMERS",
        "LEADS",
        "CONV",
        "WON",
        "AMOUNT",
        "",
    )
    table = [
        (
            row["name"] or row["key"],
            row["team"] or "-",
            str(row["inbound_received"]),
            f"{row['inbound_answered']} ({share(row['answer_rate'])})",
            str(row["inbound_missed"]),
            f"{row['outbound_made']}/{row['outbound_answered']}",
            f"{row['talk_seconds'] / 60:.0f}m",
            str(row["unique_customers"]),
            str(row["leads_created"]),
            share(row["conversion_rate"]),
            str(row["deals_won"]),
            " ".join(f"{amount} {currency}".strip() for currency, amount in row["amount_won"].items()) or "-",
            "deals without calls" if row["deals_without_calls"] else "inactive" if row["inactive"] else "",
        )
        for row in rows
    ]
    out.write(f"{period['from']} .. {period['to']} ({period['tz']})\n")
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    for cells in [header, *table]:
        out.write(
            "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip() + "\n"
        )


async def _retention(args: argparse.Namespace, settings: Settings) -> int:
    from recordings.retention import apply_retention
    from recordings.storage import RecordingStore

    days = args.days if args.days is not None else settings.recordings.retention_days
    if days is None or days <= 0:
        print(
            "calltracking: no retention age: set [recordings] retention_days or pass --days", file=sys.stderr
        )
        return EXIT_USAGE
    async with _sessions(settings) as sessions:
        report = await apply_retention(
            sessions,
            RecordingStore(settings.recordings.storage_dir),
            days,
            now=datetime.now(UTC),
            dry_run=args.dry_run,
        )
    print(json.dumps(report.as_json()))
    return EXIT_OK


async def _quality_rescore(args: argparse.Namespace, settings: Settings) -> int:
    from calltracking.quality.checklist import checklist_in_force
    from calltracking.quality.service import rescore_transcripts

    checklist = checklist_in_force(settings.quality.checklist)
    async with _sessions(settings) as sessions:
        summary = await rescore_transcripts(sessions, checklist, datetime.now(UTC), since=args.since)
    print(json.dumps(summary.view(), ensure_ascii=False))
    return EXIT_OK


async def _legal_hold(args: argparse.Namespace, settings: Settings) -> int:
    import structlog

    from recordings.repository import set_legal_hold

    async with _sessions(settings) as sessions, sessions.begin() as session:
        found = await set_legal_hold(session, args.call_id, not args.release)
    if not found:
        print(f"calltracking: no call {args.call_id}", file=sys.stderr)
        return EXIT_FAILED
    structlog.get_logger(__name__).info(
        "legal_hold_changed", call_id=args.call_id, legal_hold=not args.release, by="cli"
    )
    print(f"call {args.call_id}: legal hold {'released' if args.release else 'set'}")
    return EXIT_OK


async def _token_create(args: argparse.Namespace, settings: Settings) -> int:
    from calltracking.access.repository import create_token

    role = Role(args.role)
    manager = (args.manager or "").strip() or None
    if role is Role.MANAGER and manager is None:
        print("calltracking: a manager token needs --manager (the manager's extension)", file=sys.stderr)
        return EXIT_USAGE
    if role is not Role.MANAGER and manager is not None:
        print("calltracking: --manager only applies to --role manager", file=sys.stderr)
        return EXIT_USAGE
    token = new_token()
    async with _sessions(settings) as sessions, sessions.begin() as session:
        token_id = await create_token(session, token, args.name[:128], role, manager)
    print(
        f"token {token_id} ({role.value}{', manager ' + manager if manager else ''}), prefix {token.prefix}:"
    )
    print(token.secret)
    return EXIT_OK


async def _token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from calltracking.access.repository import revoke_token

    async with _sessions(settings) as sessions, sessions.begin() as session:
        revoked = await revoke_token(session, args.token)
    if not revoked:
        print(f"calltracking: no active token {args.token!r}", file=sys.stderr)
        return EXIT_FAILED
    print(f"revoked {revoked} token(s)")
    return EXIT_OK


async def _token_list(args: argparse.Namespace, settings: Settings) -> int:
    from calltracking.access.repository import list_tokens

    async with _sessions(settings) as sessions, sessions() as session:
        tokens = await list_tokens(session)
    for info in tokens:
        state = "revoked" if info.revoked_at else "active"
        manager = f" manager={info.manager}" if info.manager else ""
        print(f"{info.id}\t{info.prefix}\t{info.role.value}{manager}\t{state}\t{info.name}")
    return EXIT_OK


@contextlib.asynccontextmanager
async def _sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The database, migrated, for the length of one command."""
    from calltracking.store.engine import create_engine, create_sessionmaker, migrate

    _announce_database(settings)
    engine = create_engine(settings.database.url)
    try:
        await migrate(engine)
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


def _announce_database(settings: Settings) -> None:
    """Say on stderr which database a command opens (password masked, a file as its absolute path), and
    point at the working directory's `calltracking-data/` that versions before `data_dir` used."""
    shown = shown_database_url(settings.database.url)
    print(f"calltracking: database {shown}", file=sys.stderr)
    legacy = Path(LEGACY_DATA_DIR, "calltracking.db").absolute()
    if legacy.exists() and str(legacy) not in shown:
        print(
            f"calltracking: {legacy.parent} holds a database of an earlier version, which kept its data in "
            f'the working directory; to go on using it, set data_dir = "{legacy.parent}" in the settings '
            f"(or CALLTRACKING_DATA_DIR)",
            file=sys.stderr,
        )


def shown_database_url(url: str) -> str:
    """A database URL fit for a log: the password masked, an SQLite file as an absolute path."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return "(a URL that cannot be parsed)"
    database = parsed.database
    is_file = database not in (None, "", ":memory:") and not str(database).startswith("file:")
    if parsed.get_backend_name() == "sqlite" and database and is_file:
        parsed = parsed.set(database=str(Path(database).absolute()))
    return parsed.render_as_string(hide_password=True)


# Where versions before the `data_dir` setting kept the database: relative to the working directory.
LEGACY_DATA_DIR = "calltracking-data"


class _VersionAction(argparse.Action):
    """`--version`, which looks the version up only when asked (the parser itself stays import-free)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            installed = version("calltracking")
        except PackageNotFoundError:
            installed = "(not installed)"
        print(f"calltracking {installed}")
        parser.exit()


def _print_table(items: Sequence[CallOut], out: TextIO) -> None:
    header = ("ID", "STARTED (UTC)", "DIR", "STATUS", "CALLER", "CALLEE", "MANAGER", "RING", "TALK")
    rows = [
        (
            str(item.id),
            item.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            item.direction.value,
            item.status.value,
            item.caller or "-",
            item.callee or "-",
            item.manager or "-",
            f"{item.ring_seconds:.0f}s",
            f"{item.talk_seconds:.0f}s",
        )
        for item in items
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        out.write(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n"
        )
    out.write(f"{len(rows)} call(s)\n")


if __name__ == "__main__":
    sys.exit(main())
