"""One typed settings object for the whole service, read once from a TOML file and the environment.

Precedence (highest first): explicit overrides (CLI flags), environment variables
(`CALLTRACKING_...`, nested with `__`, e.g. `CALLTRACKING_DATABASE__URL`), the TOML file, defaults.
The defaults run the service on an embedded SQLite database in the data directory (`data_dir`: by
default systemd's $STATE_DIRECTORY, $XDG_STATE_HOME/calltracking or ~/.local/state/calltracking, never
the working directory) and wait for an Asterisk on 127.0.0.1:5038, so a fresh install starts without any
configuration.
"""

from __future__ import annotations

import fnmatch
import json
import os
import pwd
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from calltracking.errors import ConfigError
from calltracking.numbers import is_same_line

DEFAULT_DATA_DIR = Path("calltracking-data")
# A language as the transcription models are keyed: "ru", "en-us", "pt-br".
LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$"


def sqlite_url(path: Path) -> str:
    """The embedded database's URL for a file."""
    return f"sqlite+aiosqlite:///{path}"


class _Frozen(BaseModel):
    # A field's docstring is its description: docs/configuration.md is generated from them
    # (`calltracking config-reference`).
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class DatabaseSettings(_Frozen):
    """The database calls and everything else are stored in, and the journal (spool) in front of it."""

    url: str = sqlite_url(DEFAULT_DATA_DIR / "calltracking.db")
    """SQLAlchemy URL: `sqlite+aiosqlite:///PATH` (embedded) or `postgresql+asyncpg://USER:PASSWORD@HOST/DB`.
    """
    spool_dir: Path = DEFAULT_DATA_DIR / "spool"
    """Completed calls are fsync'd here before the database sees them, so an outage or a SIGKILL loses none.
    """
    busy_timeout_seconds: float = Field(default=30.0, gt=0)
    """How long SQLite waits for another writer's lock before the write counts as failed (and is retried)."""
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    """A database that hangs (accepts connections, never answers) must not hang the service: connecting, each
    statement and waiting for a pooled connection are bounded (PostgreSQL), and so is each whole transaction
    of the call writer and the workers. Migrations get their own, longer bound."""
    statement_timeout_seconds: float = Field(default=30.0, gt=0)
    """The longest one statement may run (PostgreSQL)."""
    pool_timeout_seconds: float = Field(default=10.0, gt=0)
    """The longest a task waits for a pooled connection."""
    transaction_timeout_seconds: float = Field(default=60.0, gt=0)
    """The longest one transaction of the call writer or a worker may take."""
    migration_timeout_seconds: float = Field(default=3600.0, gt=0)
    """The longest the migrations at start may take."""
    retry_initial_seconds: float = 0.5
    """After a failed write the call writer waits this long before it tries again, doubling up to
    retry_max_seconds; the calls wait in the spool meanwhile."""
    retry_max_seconds: float = 30.0
    """The longest wait between two tries of the call writer."""
    batch_size: int = Field(default=500, ge=1, le=10_000)
    """The most calls the writer moves from the spool to the database in one transaction."""
    lease_check_seconds: float = Field(default=2.0, gt=0, le=60)
    """Hot standby (PostgreSQL): how often a process asks for each PBX's listening lease, and so how soon a
    standby takes over from a process that died."""


class ClickToCallSettings(_Frozen):
    """How an Originate rings the manager first, then the customer through the outbound dialplan."""

    channel_template: str = "PJSIP/{extension}"
    """The manager's phone to ring first; must contain {extension}."""
    context: str = "from-internal"
    """The dialplan context that then dials the customer (the outbound routes)."""
    caller_id: str = "{number} <{number}>"
    """The caller ID the manager's phone shows; {number} is the customer's number."""
    ring_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    """How long the manager's phone rings before the request fails (manager_no_answer)."""
    variables: dict[str, str] = Field(default_factory=dict)
    """Extra channel variables, e.g. an auto-answer header: {"PJSIP_HEADER(add,Alert-Info)": "answer-after=0"}
    """

    @field_validator("channel_template")
    @classmethod
    def _has_extension(cls, value: str) -> str:
        if "{extension}" not in value:
            raise ValueError("channel_template must contain {extension}")
        return value


class PbxSettings(_Frozen):
    """One Asterisk box. Trunks are named by endpoint or by the context their channels are created in
    (globs allowed): direction is derived from these, never from how long a number is."""

    name: str = "default"
    """The PBX's name in calls, metrics, logs and URLs: letters, digits, '-', '_' or '.'; unique."""
    host: str = "127.0.0.1"
    """The AMI address of the PBX."""
    port: int = Field(default=5038, ge=1, le=65535)
    """The AMI port (manager.conf `port`)."""
    username: str = "calltracking"
    """The AMI user (a `[section]` of manager.conf)."""
    secret: str = ""
    """The AMI user's secret."""
    trunk_endpoints: tuple[str, ...] = ()
    """PJSIP/SIP endpoints that are carriers: a call whose first channel is one is inbound."""
    trunk_contexts: tuple[str, ...] = ("from-trunk*", "from-pstn*")
    """Or the contexts carrier channels are created in (globs)."""
    default_country: str = "RU"
    """The region of numbers without a country code (two letters, e.g. RU: 8 916 ... = +7 916 ...)."""
    monitor_dir: str = "/var/spool/asterisk/monitor"
    """Where this PBX writes MixMonitor files, and where the service sees them (same host or a mount; unset:
    the same path, the service runs beside Asterisk). A file outside monitor_dir is refused."""
    recordings_dir: Path | None = None
    """Where the service sees monitor_dir (a mount, e.g. NFS or sshfs; unset: monitor_dir itself)."""
    timezone: str = "UTC"
    """The PBX's local time zone: FreePBX files recordings under YYYY/MM/DD of its local date, and names them
    in CDR(recordingfile) without that directory."""
    raw_is_stereo: bool = True
    """A `.raw`/`.sln` recording is MixMonitor's option D stream (stereo: rx left, tx right); set false if
    this PBX records mono signed linear."""
    language: str | None = Field(default=None, pattern=LANGUAGE_PATTERN)
    """The language its calls are spoken in, a key of `[transcription] models` (unset: the default one)."""
    ping_interval_seconds: float = Field(default=10.0, gt=0)
    """How often the AMI link is checked with a Ping."""
    ping_timeout_seconds: float = Field(default=5.0, gt=0)
    """A Ping unanswered this long drops the link and reconnects."""
    login_timeout_seconds: float = Field(default=10.0, gt=0)
    """The longest the AMI login may take."""
    reconnect_initial_seconds: float = Field(default=1.0, gt=0)
    """The first delay before reconnecting to a PBX that is down, doubling up to reconnect_max_seconds."""
    reconnect_max_seconds: float = Field(default=60.0, gt=0)
    """The longest delay between reconnection attempts."""
    click_to_call: ClickToCallSettings = ClickToCallSettings()

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, value: str) -> str:
        if not value or not all(c.isalnum() or c in "-_." for c in value):
            raise ValueError("PBX name must be letters, digits, '-', '_' or '.'")
        return value

    @field_validator("default_country")
    @classmethod
    def _country_is_region_code(cls, value: str) -> str:
        return _region_code(value)

    @field_validator("monitor_dir")
    @classmethod
    def _monitor_dir_is_absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("monitor_dir is the PBX's absolute path, e.g. /var/spool/asterisk/monitor")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        _zone(value)
        return value

    @property
    def local_recordings_dir(self) -> Path:
        """Where the service reads this PBX's monitor directory."""
        return self.recordings_dir if self.recordings_dir is not None else Path(self.monitor_dir)

    def is_trunk(self, endpoint: str, context: str) -> bool:
        return endpoint in self.trunk_endpoints or any(
            fnmatch.fnmatchcase(context, pattern) for pattern in self.trunk_contexts
        )


class ApiSettings(_Frozen):
    """The REST API and the web interface: where they listen and how they hold up under load."""

    host: str = "127.0.0.1"
    """The address the API and the web interface listen on (0.0.0.0: every interface)."""
    port: int = Field(default=8080, ge=0, le=65535)
    """The port they listen on (0: any free port)."""
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """The largest request body, but for bulk CRM upserts and pushed recordings."""
    max_bulk_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    """Bulk CRM upserts (up to 10,000 items) may be this large; every other request is held to the above."""
    rate_limit_per_minute: int = Field(default=1200, ge=1)
    """Requests per token per minute (a token bucket, refilled continuously)."""
    token_cache_seconds: float = Field(default=5.0, ge=0)
    """How long a checked token is trusted before it is looked up again (a revocation takes at most this
    long)."""
    database_timeout_seconds: float = Field(default=10.0, gt=0)
    """The most a request waits on the database before it is answered 503 (with Retry-After); /readyz waits at
    most readiness_timeout_seconds before it reports the database down."""
    readiness_timeout_seconds: float = Field(default=2.0, gt=0)
    """The most /readyz waits on the database."""
    retry_after_seconds: int = Field(default=5, ge=1)
    """The Retry-After of a 503 answered while the database is unavailable."""


class WebSettings(_Frozen):
    """The web interface for supervisors and managers, served by the API's process under /ui/."""

    enabled: bool = True
    """Serve the web interface under /ui/."""
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    """A sign-in lasts this long (it also ends on sign-out and when its token is revoked)."""
    default_language: Literal["en", "ru"] = "en"
    """Pages speak this language until the browser's Accept-Language or the user's switch says otherwise."""
    secure_cookies: bool = False
    """Set when the interface is reached over HTTPS (directly or through a proxy): the session cookie is then
    never sent over plain HTTP."""


EntityKind = Literal["contact", "company", "lead"]


class AutoLeadSettings(_Frozen):
    """Which calls from or to a number the CRM does not know create a lead. Outbound is off by default:
    managers also dial suppliers, colleagues' mobiles and the like."""

    answered_inbound: bool = True
    """An answered inbound call from an unknown number creates a lead."""
    missed_inbound: bool = True
    """A missed inbound call from an unknown number creates a lead."""
    outbound_unknown: bool = False
    """An outbound call to an unknown number creates a lead."""


class CrmSettings(_Frozen):
    """How calls land on CRM entities."""

    default_country: str = "RU"
    """Region of CRM phone numbers written without a country code ("8 (916) 123-45-67")."""
    tail_digits: int = Field(default=10, ge=6, le=15)
    """Fallback match on the last N digits, for numbers the CRM stores in formats that do not normalise."""
    match_priority: tuple[EntityKind, ...] = ("contact", "company", "lead")
    """Which kind of entity wins when a number belongs to several (see calltracking/matching.py)."""
    auto_leads: AutoLeadSettings = AutoLeadSettings()
    callback_due_minutes: float = Field(default=15.0, gt=0, le=60 * 24 * 30)
    """A missed call must be returned within this time (the callback task's due time and the SLA)."""

    @field_validator("default_country")
    @classmethod
    def _country_is_region_code(cls, value: str) -> str:
        return _region_code(value)

    @field_validator("match_priority")
    @classmethod
    def _every_kind_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if sorted(value) != ["company", "contact", "lead"]:
            raise ValueError("match_priority must name contact, company and lead, each once")
        return value


class DidSettings(_Frozen):
    """A tracking number: where the calls to it come from, and who takes them by default."""

    source: str | None = Field(default=None, max_length=128)
    """Where calls to this number come from, e.g. `yandex` (the source report's source)."""
    medium: str | None = Field(default=None, max_length=128)
    """The medium, e.g. `cpc`."""
    campaign: str | None = Field(default=None, max_length=128)
    """The campaign, e.g. `spring-sale`."""
    default_manager: str | None = Field(default=None, max_length=128)
    """The CRM id of the manager who gets leads and callbacks when nobody answered."""
    language: str | None = Field(default=None, pattern=LANGUAGE_PATTERN)
    """The language calls to this number are transcribed in (a line for another country's customers)."""


class PoolSettings(_Frozen):
    """The website's dynamic number pool: each visit is shown a number of its own for `ttl_seconds` after
    its last activity, so a call to it tells which visit (and which ad) brought the caller."""

    numbers: tuple[str, ...] = ()
    """The pool's tracking numbers, as the carrier delivers them."""
    fallback_number: str | None = None
    """Shown when every pool number is held by a visit: calls to it are counted, but not to one visit."""
    ttl_seconds: float = Field(default=1800.0, gt=0, le=7 * 24 * 3600)
    """A visit keeps its number this long after its last activity."""
    sessions_per_minute: int = Field(default=600, ge=1)
    """Per integration token, on top of the API's own limit: a website's traffic is bursty."""


class TrackingSettings(_Frozen):
    """Tracking numbers (DIDs) as the carrier delivers them, e.g. `[tracking.dids."74951110001"]`."""

    dids: dict[str, DidSettings] = Field(default_factory=dict)
    pool: PoolSettings = PoolSettings()
    target_talk_seconds: float = Field(default=30.0, ge=0)
    """An inbound call is a target call when answered and talked longer than this."""

    def did(self, did: str | None) -> DidSettings | None:
        """The settings of a DID, also when the carrier sends it in another format than configured."""
        if not did:
            return None
        if did in self.dids:
            return self.dids[did]
        return next((settings for number, settings in self.dids.items() if is_same_line(number, did)), None)


class StatsSettings(_Frozen):
    """Reports: the zone their days are in, the business hours `business_hours=true` keeps, and the
    queue service level."""

    timezone: str | None = None
    """Unset: the first PBX's zone."""
    business_hours_start: str = Field(default="09:00", pattern=r"^([01][0-9]|2[0-3]):(00|15|30|45)$")
    """Business hours start (HH:MM, quarter hours), in the report's zone."""
    business_hours_end: str = Field(default="18:00", pattern=r"^([01][0-9]|2[0-4]):(00|15|30|45)$")
    """Business hours end (HH:MM, quarter hours; 24:00 allowed)."""
    business_days: tuple[int, ...] = (1, 2, 3, 4, 5)
    """ISO weekdays (1 = Monday)."""
    queue_service_level_seconds: float = Field(default=20.0, gt=0)
    """A queue call answered within this many seconds of joining counts for the service level."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            _zone(value)
        return value

    @field_validator("business_days")
    @classmethod
    def _weekdays(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(day < 1 or day > 7 for day in value):
            raise ValueError("business days are ISO weekdays, 1 (Monday) to 7")
        return value

    @model_validator(mode="after")
    def _hours_in_order(self) -> StatsSettings:
        if self.business_hours_end <= self.business_hours_start:
            raise ValueError("business_hours_end must be after business_hours_start")
        return self


class RecordingSettings(_Frozen):
    """How recordings are taken from the PBX, converted, kept and, after `retention_days`, deleted."""

    storage_dir: Path = DEFAULT_DATA_DIR / "recordings"
    """Converted audio lives here under content-addressed names; `quarantine` and `inbox` (pushed files) are
    subdirectories."""
    format: Literal["ogg/opus", "mp3"] = "ogg/opus"
    """Opus in Ogg (compact; every current browser plays it) or MP3 (for older players), at this bitrate in
    bits per second: 16 kbit/s of Opus keeps telephone speech intact; MP3 wants 32 kbit/s or more."""
    bitrate: int = Field(default=16_000, ge=6_000, le=256_000)
    """The converted audio's bitrate in bits per second."""
    complexity: int = Field(default=5, ge=0, le=10)
    """libopus's effort (0-10): lower is faster with slightly larger files for the same quality."""
    settle_seconds: float = Field(default=3.0, ge=0)
    """After the call ends, wait this long before taking the file (MixMonitor closes it after the hangup), and
    take a file only once it has not changed for this long."""
    retry_initial_seconds: float = Field(default=2.0, gt=0)
    """A file not there yet is looked for again with growing delays, for this long; then the call is marked
    recording_missing."""
    retry_max_seconds: float = Field(default=60.0, gt=0)
    """The longest delay between two looks for a file not there yet."""
    missing_after_seconds: float = Field(default=900.0, ge=0)
    """A file still not there this long after the call ended: the call is recording_missing."""
    silence_dbfs: float = Field(default=-60.0, le=0)
    """A recording whose loudest sample is below this (dBFS) is silence: nobody spoke."""
    delete_originals: bool = False
    """Remove the PBX's original once the converted audio is stored (off: the PBX keeps its files)."""
    workers: int = Field(default=2, ge=1, le=64)
    """Files converted at the same time (each is one ffmpeg process)."""
    max_push_bytes: int = Field(default=1024 * 1024 * 1024, ge=1024)
    """The largest file `PUT /api/v1/recordings/...` accepts."""
    retention_days: float | None = Field(default=None, gt=0)
    """Delete audio of calls older than this (the call record stays); unset keeps audio forever."""
    retention_interval_seconds: float = Field(default=3600.0, gt=0)
    """How often `serve` applies retention_days."""


class TranscriptionSettings(_Frozen):
    """Offline speech recognition with vosk: a model directory per language, e.g.
    `models = {ru = "/opt/vosk/ru"}` (models from https://alphacephei.com/vosk/models)."""

    models: dict[str, Path] = Field(default_factory=dict)
    """A vosk model directory per language, e.g. {ru = "/opt/vosk/ru"}."""
    default_language: str | None = Field(default=None, pattern=LANGUAGE_PATTERN)
    """The language of a PBX that names none; unset: such calls are not transcribed."""
    workers: int = Field(default=0, ge=0, le=64)
    """Transcription workers `serve` runs in its own process (0: none; `calltracking worker` runs them)."""
    chunk_seconds: float = Field(default=0.25, gt=0, le=10)
    """Audio is decoded and fed to the recognizer this many seconds at a time."""
    recognizer_seconds: float = Field(default=120.0, ge=10)
    """A recognizer's memory grows with what it has heard: a fresh one takes over after this much audio."""

    @field_validator("models")
    @classmethod
    def _languages_are_codes(cls, value: dict[str, Path]) -> dict[str, Path]:
        for language in value:
            if not re.match(LANGUAGE_PATTERN, language):
                raise ValueError(f"model language {language!r} must be a code such as 'ru' or 'en-us'")
        return value


class QualitySettings(_Frozen):
    """Call quality: the supervisor's checklist (`calltracking/quality/checklist.example.yaml` shows every
    field; its silence threshold and fillers are the metrics' settings too). Unset: the shipped example."""

    checklist: Path | None = None
    """The checklist YAML file (unset: the shipped example)."""


class LogSettings(_Frozen):
    """Logs: structured lines on stderr (docs/operations.md lists their fields)."""

    level: str = "info"
    """debug, info, warning or error."""
    format: str = "auto"
    """"auto": console renderer on a TTY, JSON lines otherwise."""

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in ("auto", "json", "console"):
            raise ValueError("log format must be auto, json or console")
        return value


class Settings(_Frozen):
    # `load_settings` always sets it; a Settings built in code without it keeps the relative defaults.
    data_dir: Path | None = None
    """Where the embedded database (`<data_dir>/calltracking.db`), the spool (`<data_dir>/spool`) and the
    recordings (`<data_dir>/recordings`) live unless their own settings say otherwise; never the working
    directory."""
    database: DatabaseSettings = DatabaseSettings()
    pbxs: tuple[PbxSettings, ...] = (PbxSettings(),)
    api: ApiSettings = ApiSettings()
    web: WebSettings = WebSettings()
    log: LogSettings = LogSettings()
    crm: CrmSettings = CrmSettings()
    tracking: TrackingSettings = TrackingSettings()
    recordings: RecordingSettings = RecordingSettings()
    stats: StatsSettings = StatsSettings()
    transcription: TranscriptionSettings = TranscriptionSettings()
    quality: QualitySettings = QualitySettings()

    @model_validator(mode="before")
    @classmethod
    def _paths_under_data_dir(cls, values: Any) -> Any:
        if not isinstance(values, dict) or values.get("data_dir") is None:
            return values
        data_dir = Path(values["data_dir"])
        defaults: dict[str, dict[str, Any]] = {
            "database": {"url": sqlite_url(data_dir / "calltracking.db"), "spool_dir": data_dir / "spool"},
            "recordings": {"storage_dir": data_dir / "recordings"},
        }
        filled = dict(values)
        for section, paths in defaults.items():
            given = filled.get(section, {})
            if isinstance(given, dict):
                filled[section] = paths | given
        return filled

    @model_validator(mode="after")
    def _unique_pbx_names(self) -> Settings:
        names = [p.name for p in self.pbxs]
        if not names:
            raise ValueError("at least one PBX must be configured")
        if len(names) != len(set(names)):
            raise ValueError("PBX names must be unique")
        return self

    @model_validator(mode="after")
    def _languages_have_models(self) -> Settings:
        named = [p.language for p in self.pbxs] + [self.transcription.default_language]
        named += [did.language for did in self.tracking.dids.values()]
        for language in named:
            if language is not None and language not in self.transcription.models:
                raise ValueError(f"language {language!r} has no model in [transcription] models")
        return self

    @property
    def report_timezone(self) -> str:
        """The zone reports count days in when the request names none: `[stats]`, else the first PBX's."""
        return self.stats.timezone or (self.pbxs[0].timezone if self.pbxs else "UTC")

    def transcription_language(self, pbx: str, did: str | None = None) -> str | None:
        """The language a call is transcribed in: its DID's, else its PBX's, else `[transcription]`'s
        default."""
        number = self.tracking.did(did)
        if number is not None and number.language is not None:
            return number.language
        return self.pbx(pbx).language or self.transcription.default_language

    def pbx(self, name: str) -> PbxSettings:
        for pbx in self.pbxs:
            if pbx.name == name:
                return pbx
        raise ConfigError(f"no PBX named {name!r} in the settings")


def _zone(value: str) -> ZoneInfo:
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r} (an IANA name such as Europe/Moscow)") from exc


def _region_code(value: str) -> str:
    if len(value) != 2 or not value.isalpha():
        raise ValueError("default_country must be a two-letter region code such as 'RU'")
    return value.upper()


ENV_PREFIX = "CALLTRACKING_"


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read the TOML file (if any), then let the environment and explicit overrides win.

    The environment is read here and nowhere else; `environ` lets tests pass their own.
    """
    env = os.environ if environ is None else environ
    path = config_file or (Path(env["CALLTRACKING_CONFIG"]) if env.get("CALLTRACKING_CONFIG") else None)
    values: dict[str, Any] = {}
    if path is not None:
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        if "pbx" in values and "pbxs" not in values:
            values["pbxs"] = values.pop("pbx")
    from_env = _values_from_env(env)
    values = _deep_merge(values, from_env)
    values = _deep_merge(values, dict(overrides or {}))
    values["data_dir"] = Path(values.get("data_dir") or default_data_dir(env)).expanduser().absolute()
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = [_problem(error, values, from_env, path) for error in exc.errors()]
        where = f" in {path}" if path is not None else ""
        raise ConfigError("\n".join([f"invalid settings{where}:", *problems])) from None
    except ValueError as exc:
        raise ConfigError(f"invalid settings: {exc}") from exc


def default_data_dir(env: Mapping[str, str]) -> Path:
    """Where the database, spool and recordings live unless `data_dir` (`CALLTRACKING_DATA_DIR`) says:
    systemd's `StateDirectory=` ($STATE_DIRECTORY, e.g. /var/lib/calltracking), else
    `$XDG_STATE_HOME/calltracking`, else `~/.local/state/calltracking`; never the working directory."""
    if env.get("STATE_DIRECTORY"):
        return Path(env["STATE_DIRECTORY"].split(":")[0])
    if env.get("XDG_STATE_HOME"):
        return Path(env["XDG_STATE_HOME"]) / "calltracking"
    home = Path(env["HOME"]) if env.get("HOME") else Path(pwd.getpwuid(os.getuid()).pw_dir)
    return home / ".local" / "state" / "calltracking"


# Settings whose value is not echoed in an error: it may hold a password.
_SECRET_KEYS = frozenset({"secret", "url", "password"})


def _problem(
    error: ErrorDetails, values: Mapping[str, Any], env: Mapping[str, Any], path: Path | None
) -> str:
    """One validation error as the admin wrote the setting: `[[pbx]] 'office': port must be ...`, or
    `CALLTRACKING_DATABASE__URL must be ...` when the value came from the environment; no library jargon."""
    loc = [str(part) for part in error["loc"]]
    message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    for jargon, words in (
        ("Input should", "must"),
        ("String should", "must"),
        ("Field required", "is required"),
    ):
        message = message.replace(jargon, words)
    if error["type"] == "extra_forbidden":
        message = "is not a setting"
    elif loc and loc[-1] not in _SECRET_KEYS:
        given = error.get("input")
        if isinstance(given, str | int | float | bool):
            message += f" (got {given!r})"
    if not loc:
        return message
    name = _setting_name(loc, values, env)
    is_block = isinstance(_value_at(values, loc), Mapping) or (loc[0] == "pbxs" and len(loc) <= 2)
    return f"{name}: {message}" if is_block and error["type"] != "extra_forbidden" else f"{name} {message}"


def _setting_name(loc: list[str], values: Mapping[str, Any], env: Mapping[str, Any]) -> str:
    if loc[0] == "pbxs":
        block = "CALLTRACKING_PBXS" if "pbxs" in env else "[[pbx]]"
        label = _pbx_label(loc, values)
        field = ".".join(loc[2:])
        return f"{block} {label}: {field}" if field else f"{block} {label}".rstrip()
    if _has_path(env, loc):
        return ENV_PREFIX + "__".join(loc).upper()
    if len(loc) == 1:
        return f"[{loc[0]}]" if isinstance(values.get(loc[0]), Mapping) else loc[0]
    if isinstance(_value_at(values, loc), Mapping):
        return f"[{_section(loc)}]"
    return f"[{_section(loc[:-1])}] {loc[-1]}"


def _section(loc: list[str]) -> str:
    return ".".join(part if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part) else f'"{part}"' for part in loc)


def _pbx_label(loc: list[str], values: Mapping[str, Any]) -> str:
    """A `[[pbx]]` block by its name, or by its place when it has none."""
    pbxs = values.get("pbxs")
    index = int(loc[1]) if len(loc) > 1 and loc[1].isdigit() else None
    if index is not None and isinstance(pbxs, list | tuple) and index < len(pbxs):
        block = pbxs[index]
        name = block.get("name") if isinstance(block, Mapping) else getattr(block, "name", None)
        if isinstance(name, str) and name:
            return repr(name)
    return f"#{index + 1}" if index is not None else ""


def _has_path(values: Mapping[str, Any], loc: list[str]) -> bool:
    return _value_at(values, loc) is not _ABSENT


_ABSENT = object()


def _value_at(values: Mapping[str, Any], loc: list[str]) -> Any:
    node: Any = values
    for part in loc:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list | tuple) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _ABSENT
    return node


def _values_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """`CALLTRACKING_DATABASE__URL=...` -> {"database": {"url": ...}}; JSON values for lists."""
    values: dict[str, Any] = {}
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX) or key == "CALLTRACKING_CONFIG":
            continue
        path = [part.lower() for part in key[len(ENV_PREFIX) :].split("__") if part]
        if not path:
            continue
        value: Any = raw
        if raw[:1] in "[{":
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{key} is not valid JSON: {exc}") from exc
        node = values
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{key} conflicts with another setting")
        node[path[-1]] = value
    return values


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
