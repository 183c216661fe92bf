"""One typed settings object for the whole service, read once from a TOML file and the environment.

Precedence (highest first): explicit overrides (CLI flags), environment variables
(`CALLTRACKING_...`, nested with `__`, e.g. `CALLTRACKING_DATABASE__URL`), the TOML file, defaults.
The defaults run the service on an embedded SQLite database in the data directory (`data_dir`: by
default systemd's $STATE_DIRECTORY, $XDG_STATE_HOME/calltracking or ~/.local/state/calltracking, never
the working directory) and wait for an Asterisk on 127.0.0.1:5038, so a fresh install starts without any configuration.
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
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatabaseSettings(_Frozen):
    url: str = sqlite_url(DEFAULT_DATA_DIR / "calltracking.db")
    # Completed calls are fsync'd here before the database sees them, so an outage or a SIGKILL loses none.
    spool_dir: Path = DEFAULT_DATA_DIR / "spool"
    # How long SQLite waits for another writer's lock before the write counts as failed (and is retried).
    busy_timeout_seconds: float = Field(default=30.0, gt=0)
    # A database that hangs (accepts connections, never answers) must not hang the service: connecting,
    # each statement and waiting for a pooled connection are bounded (PostgreSQL), and so is each whole
    # transaction of the call writer and the workers. Migrations get their own, longer bound.
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    statement_timeout_seconds: float = Field(default=30.0, gt=0)
    pool_timeout_seconds: float = Field(default=10.0, gt=0)
    transaction_timeout_seconds: float = Field(default=60.0, gt=0)
    migration_timeout_seconds: float = Field(default=3600.0, gt=0)
    retry_initial_seconds: float = 0.5
    retry_max_seconds: float = 30.0
    batch_size: int = Field(default=500, ge=1, le=10_000)
    # Hot standby (PostgreSQL): how often a process asks for each PBX's listening lease, and so how soon a
    # standby takes over from a process that died.
    lease_check_seconds: float = Field(default=2.0, gt=0, le=60)


class ClickToCallSettings(_Frozen):
    """How an Originate rings the manager first, then the customer through the outbound dialplan."""

    channel_template: str = "PJSIP/{extension}"
    context: str = "from-internal"
    caller_id: str = "{number} <{number}>"
    ring_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    # Extra channel variables, e.g. an auto-answer header: {"PJSIP_HEADER(add,Alert-Info)": "answer-after=0"}
    variables: dict[str, str] = Field(default_factory=dict)

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
    host: str = "127.0.0.1"
    port: int = Field(default=5038, ge=1, le=65535)
    username: str = "calltracking"
    secret: str = ""
    trunk_endpoints: tuple[str, ...] = ()
    trunk_contexts: tuple[str, ...] = ("from-trunk*", "from-pstn*")
    default_country: str = "RU"
    # Where this PBX writes MixMonitor files, and where the service sees them (same host or a mount;
    # unset: the same path, the service runs beside Asterisk). A file outside monitor_dir is refused.
    monitor_dir: str = "/var/spool/asterisk/monitor"
    recordings_dir: Path | None = None
    # The PBX's local time zone: FreePBX files recordings under YYYY/MM/DD of its local date, and names
    # them in CDR(recordingfile) without that directory.
    timezone: str = "UTC"
    # A `.raw`/`.sln` recording is MixMonitor's option D stream (stereo: rx left, tx right); set false if
    # this PBX records mono signed linear.
    raw_is_stereo: bool = True
    # The language its calls are spoken in, a key of `[transcription] models` (unset: the default one).
    language: str | None = Field(default=None, pattern=LANGUAGE_PATTERN)
    ping_interval_seconds: float = Field(default=10.0, gt=0)
    ping_timeout_seconds: float = Field(default=5.0, gt=0)
    login_timeout_seconds: float = Field(default=10.0, gt=0)
    reconnect_initial_seconds: float = Field(default=1.0, gt=0)
    reconnect_max_seconds: float = Field(default=60.0, gt=0)
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
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Bulk CRM upserts (up to 10,000 items) may be this large; every other request is held to the above.
    max_bulk_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    # Requests per token per minute (a token bucket, refilled continuously).
    rate_limit_per_minute: int = Field(default=1200, ge=1)
    token_cache_seconds: float = Field(default=5.0, ge=0)
    # The most a request waits on the database before it is answered 503 (with Retry-After); /readyz
    # waits at most readiness_timeout_seconds before it reports the database down.
    database_timeout_seconds: float = Field(default=10.0, gt=0)
    readiness_timeout_seconds: float = Field(default=2.0, gt=0)
    retry_after_seconds: int = Field(default=5, ge=1)


class WebSettings(_Frozen):
    """The web interface for supervisors and managers, served by the API's process under /ui/."""

    enabled: bool = True
    # A sign-in lasts this long (it also ends on sign-out and when its token is revoked).
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    # Pages speak this language until the browser's Accept-Language or the user's switch says otherwise.
    default_language: Literal["en", "ru"] = "en"
    # Set when the interface is reached over HTTPS (directly or through a proxy): the session cookie is
    # then never sent over plain HTTP.
    secure_cookies: bool = False


EntityKind = Literal["contact", "company", "lead"]


class AutoLeadSettings(_Frozen):
    """Which calls from or to a number the CRM does not know create a lead. Outbound is off by default:
    managers also dial suppliers, colleagues' mobiles and the like."""

    answered_inbound: bool = True
    missed_inbound: bool = True
    outbound_unknown: bool = False


class CrmSettings(_Frozen):
    """How calls land on CRM entities."""

    # Region of CRM phone numbers written without a country code ("8 (916) 123-45-67").
    default_country: str = "RU"
    # Fallback match on the last N digits, for numbers the CRM stores in formats that do not normalise.
    tail_digits: int = Field(default=10, ge=6, le=15)
    # Which kind of entity wins when a number belongs to several (see calltracking/matching.py).
    match_priority: tuple[EntityKind, ...] = ("contact", "company", "lead")
    auto_leads: AutoLeadSettings = AutoLeadSettings()
    # A missed call must be returned within this time (the callback task's due time and the SLA).
    callback_due_minutes: float = Field(default=15.0, gt=0, le=60 * 24 * 30)

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
    medium: str | None = Field(default=None, max_length=128)
    campaign: str | None = Field(default=None, max_length=128)
    # The CRM id of the manager who gets leads and callbacks when nobody answered.
    default_manager: str | None = Field(default=None, max_length=128)
    # The language calls to this number are transcribed in (a line for another country's customers).
    language: str | None = Field(default=None, pattern=LANGUAGE_PATTERN)


class PoolSettings(_Frozen):
    """The website's dynamic number pool: each visit is shown a number of its own for `ttl_seconds` after
    its last activity, so a call to it tells which visit (and which ad) brought the caller."""

    numbers: tuple[str, ...] = ()
    # Shown when every pool number is held by a visit: calls to it are counted, but not to one visit.
    fallback_number: str | None = None
    ttl_seconds: float = Field(default=1800.0, gt=0, le=7 * 24 * 3600)
    # Per integration token, on top of the API's own limit: a website's traffic is bursty.
    sessions_per_minute: int = Field(default=600, ge=1)


class TrackingSettings(_Frozen):
    """Tracking numbers (DIDs) as the carrier delivers them, e.g. `[tracking.dids."74951110001"]`."""

    dids: dict[str, DidSettings] = Field(default_factory=dict)
    pool: PoolSettings = PoolSettings()
    # An inbound call is a target call when answered and talked longer than this.
    target_talk_seconds: float = Field(default=30.0, ge=0)

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

    # Unset: the first PBX's zone.
    timezone: str | None = None
    business_hours_start: str = Field(default="09:00", pattern=r"^([01][0-9]|2[0-3]):(00|15|30|45)$")
    business_hours_end: str = Field(default="18:00", pattern=r"^([01][0-9]|2[0-4]):(00|15|30|45)$")
    # ISO weekdays (1 = Monday).
    business_days: tuple[int, ...] = (1, 2, 3, 4, 5)
    # A queue call answered within this many seconds of joining counts for the service level.
    queue_service_level_seconds: float = Field(default=20.0, gt=0)

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

    # Converted audio lives here under content-addressed names; `quarantine` and `inbox` (pushed files)
    # are subdirectories.
    storage_dir: Path = DEFAULT_DATA_DIR / "recordings"
    # Opus in Ogg (compact; every current browser plays it) or MP3 (for older players), at this bitrate
    # in bits per second: 16 kbit/s of Opus keeps telephone speech intact; MP3 wants 32 kbit/s or more.
    format: Literal["ogg/opus", "mp3"] = "ogg/opus"
    bitrate: int = Field(default=16_000, ge=6_000, le=256_000)
    # libopus's effort (0-10): lower is faster with slightly larger files for the same quality.
    complexity: int = Field(default=5, ge=0, le=10)
    # After the call ends, wait this long before taking the file (MixMonitor closes it after the hangup),
    # and take a file only once it has not changed for this long.
    settle_seconds: float = Field(default=3.0, ge=0)
    # A file not there yet is looked for again with growing delays, for this long; then the call is
    # marked recording_missing.
    retry_initial_seconds: float = Field(default=2.0, gt=0)
    retry_max_seconds: float = Field(default=60.0, gt=0)
    missing_after_seconds: float = Field(default=900.0, ge=0)
    # A recording whose loudest sample is below this (dBFS) is silence: nobody spoke.
    silence_dbfs: float = Field(default=-60.0, le=0)
    # Remove the PBX's original once the converted audio is stored (off: the PBX keeps its files).
    delete_originals: bool = False
    # Files converted at the same time (each is one ffmpeg process).
    workers: int = Field(default=2, ge=1, le=64)
    # The largest file `PUT /api/v1/recordings/...` accepts.
    max_push_bytes: int = Field(default=1024 * 1024 * 1024, ge=1024)
    # Delete audio of calls older than this (the call record stays); unset keeps audio forever.
    retention_days: float | None = Field(default=None, gt=0)
    retention_interval_seconds: float = Field(default=3600.0, gt=0)


class TranscriptionSettings(_Frozen):
    """Offline speech recognition with vosk: a model directory per language, e.g.
    `models = {ru = "/opt/vosk/ru"}` (models from https://alphacephei.com/vosk/models)."""

    models: dict[str, Path] = Field(default_factory=dict)
    # The language of a PBX that names none; unset: such calls are not transcribed.
    default_language: str | None = Field(default=None, pattern=LANGUAGE_PATTERN)
    # Transcription workers `serve` runs in its own process (0: none; `calltracking worker` runs them).
    workers: int = Field(default=0, ge=0, le=64)
    # Audio is decoded and fed to the recognizer this many seconds at a time.
    chunk_seconds: float = Field(default=0.25, gt=0, le=10)
    # A recognizer's memory grows with what it has heard: a fresh one takes over after this much audio.
    recognizer_seconds: float = Field(default=120.0, ge=10)

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


class LogSettings(_Frozen):
    level: str = "info"
    # "auto": console renderer on a TTY, JSON lines otherwise.
    format: str = "auto"

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in ("auto", "json", "console"):
            raise ValueError("log format must be auto, json or console")
        return value


class Settings(_Frozen):
    # Where the embedded database, the spool and the recordings live unless their own settings say:
    # `<data_dir>/calltracking.db`, `<data_dir>/spool`, `<data_dir>/recordings`. Unset (only when built
    # in code): the defaults below; `load_settings` always sets it, by default to $STATE_DIRECTORY
    # (systemd), else $XDG_STATE_HOME/calltracking, else ~/.local/state/calltracking; never the working
    # directory.
    data_dir: Path | None = None
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
