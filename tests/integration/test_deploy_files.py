"""The deployment files hold together: docker/compose.yaml and the Dockerfile (no Docker here, so they are
read and checked field by field), the Asterisk configs in docker/asterisk/ (asterisklint on the dialplan,
the AMI user's classes against the events and actions the service really uses) and the systemd units
(`systemd-analyze verify`, and their keys read back)."""

from __future__ import annotations

import configparser
import fnmatch
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ami.events import _PARSERS as PARSED_EVENTS
from calltracking.app.cli import _parser as cli_parser
from calltracking.app.serve import SHUTDOWN_FLUSH_SECONDS
from calltracking.config import load_settings
from tests.helpers.captures import TRACES

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
ASTERISK = DOCKER / "asterisk"
SYSTEMD = DOCKER / "systemd"
CONFIG_SECRET = "calltracking.toml"
HEALTHY = "service_healthy"

# Classes of events the service parses but no capture shows (captures carry each event's `Privilege:`).
# None: an action's response, which needs no read class.
EVENT_CLASSES_NOT_IN_CAPTURES: dict[str, str | None] = {
    "Pickup": "call",
    "BlindTransfer": "call",
    "Shutdown": "system",
    "CoreShowChannel": None,
}
# Asterisk lets a user run an action when it holds any one of the action's classes; () needs none.
ACTION_CLASSES: dict[str, tuple[str, ...]] = {
    "Originate": ("originate",),
    "CoreShowChannels": ("system", "reporting"),
    "PJSIPShowEndpoints": ("system",),
    "Ping": (),
    "Login": (),
    "Logoff": (),
    "ListCommands": (),
}
# Sent by `calltracking doctor` only, which says what it cannot check when refused: listing the trunk
# endpoints would need `system`, which could also reload and restart the PBX.
OPTIONAL_ACTIONS = {"PJSIPShowEndpoints"}
# Write classes that would let the service change the PBX beyond placing calls.
TOO_POWERFUL = {"all", "system", "call", "command", "config", "agent", "user"}


# --- docker/compose.yaml and the Dockerfile ---------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _interpolated(value: str) -> str:
    """A compose value with every `${NAME:-default}` replaced by its default."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def _secret_file(compose: dict[str, Any], name: str = CONFIG_SECRET) -> Path:
    return DOCKER / _interpolated(compose["secrets"][name]["file"])


def _dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DOCKER / "Dockerfile").read_text(encoding="utf-8"))
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def _dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in _dockerfile():
        if keyword == "ENV":
            for pair in rest.split():
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def test_compose_publishes_the_port_the_api_listens_on_every_interface(compose: dict[str, Any]) -> None:
    service = compose["services"]["calltracking"]
    env = _environment(service)
    assert env["CALLTRACKING_API__HOST"] == "0.0.0.0"
    container_ports = {_interpolated(str(port)).rsplit(":", 1)[-1] for port in service["ports"]}
    assert container_ports == {env["CALLTRACKING_API__PORT"]}
    probe = " ".join(service["healthcheck"]["test"])
    assert f"127.0.0.1:{env['CALLTRACKING_API__PORT']}/healthz" in probe


def test_compose_waits_for_healthy_dependencies_only(compose: dict[str, Any]) -> None:
    services = compose["services"]
    waits = 0
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on without a condition"
        for target, how in depends_on.items():
            assert how.get("condition") == HEALTHY, f"{name} -> {target}"
            check = services[target].get("healthcheck", {})
            assert check.get("test") and not check.get("disable"), f"{target} has no healthcheck"
            waits += 1
    assert waits >= 3  # the service on the database; the worker on both
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])


def test_compose_reaches_an_asterisk_on_the_docker_host(compose: dict[str, Any]) -> None:
    service = compose["services"]["calltracking"]
    assert "host.docker.internal:host-gateway" in service["extra_hosts"]
    settings = load_settings(_secret_file(compose), environ={})
    assert settings.pbxs[0].host == "host.docker.internal"


def test_compose_keeps_secrets_out_of_json_environment(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key, value in _environment(service).items():
            assert not value.lstrip().startswith(("[", "{")), f"{name}: {key} is JSON"
            assert not re.search(r"SECRET|PBXS", key), f"{name}: {key} carries the PBX"
    for name in ("calltracking", "worker"):
        service = compose["services"][name]
        assert CONFIG_SECRET in service["secrets"]
        assert _environment(service)["CALLTRACKING_CONFIG"] == f"/run/secrets/{CONFIG_SECRET}"


def test_compose_config_files_load_and_match_the_mounts(compose: dict[str, Any]) -> None:
    services = compose["services"]
    demo = load_settings(DOCKER / "calltracking-demo.toml", environ={})
    default = load_settings(_secret_file(compose), environ={})
    mounts = {
        name: {_interpolated(volume).split(":")[1] for volume in service.get("volumes", [])}
        for name, service in services.items()
    }
    for settings in (demo, default):
        [pbx] = settings.pbxs
        assert str(pbx.recordings_dir) in mounts["calltracking"]
        assert pbx.secret == _manager_users(ASTERISK / "manager.conf")["calltracking"]["secret"][0]
        assert {str(path) for path in settings.transcription.models.values()} <= mounts["worker"]
    assert demo.pbxs[0].host == "asterisk" and "asterisk" in services


def test_compose_commands_are_real_cli_commands(compose: dict[str, Any]) -> None:
    for name in ("calltracking", "worker"):
        cli_parser().parse_args(compose["services"][name]["command"])
    # The worker has no HTTP: the image's /healthz check must not mark it unhealthy.
    assert compose["services"]["worker"]["healthcheck"] == {"disable": True}


def test_compose_demo_asterisk_mounts_existing_configs_read_only(compose: dict[str, Any]) -> None:
    asterisk = compose["services"]["asterisk"]
    assert asterisk["profiles"] == ["pbx"]
    files = [volume for volume in asterisk["volumes"] if volume.startswith("./")]
    assert len(files) >= 3
    for volume in files:
        source, target, mode = volume.split(":")
        assert (DOCKER / source).is_file(), source
        assert target.startswith("/etc/asterisk/") and mode == "ro"


def test_image_runs_as_a_user_with_a_healthcheck_and_an_exposed_api_port() -> None:
    instructions = _dockerfile()
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0") and not users[-1].startswith(("root:", "0:"))
    [healthcheck] = [rest for keyword, rest in instructions if keyword == "HEALTHCHECK"]
    assert "/healthz" in healthcheck
    env = _dockerfile_env()
    assert env["CALLTRACKING_API__HOST"] == "0.0.0.0"
    [exposed] = [rest for keyword, rest in instructions if keyword == "EXPOSE"]
    assert exposed.split("/")[0] == env["CALLTRACKING_API__PORT"]
    copied = {rest.split()[0] for keyword, rest in instructions if keyword == "COPY"}
    assert {"ami", "calltracking", "recordings", "transcription", "api"} <= copied


def test_installed_package_carries_every_data_file() -> None:
    """`pip install .` (the image) ships only the data files pyproject names: every template, catalog and
    script of the web interface must be among them, or the image serves a broken /ui/."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    package_data: dict[str, list[str]] = pyproject["tool"]["setuptools"]["package-data"]
    missing = []
    for package in ("ami", "api", "calltracking", "recordings", "transcription"):
        for path in (ROOT / package).rglob("*"):
            if not path.is_file() or path.suffix in (".py", ".pyc"):
                continue
            relative = path.relative_to(ROOT / package).as_posix()
            if not any(fnmatch.fnmatchcase(relative, glob) for glob in package_data.get(package, [])):
                missing.append(f"{package}/{relative}")
    assert missing == []
    assert any((ROOT / "api" / "web" / "static").glob("*.js"))


# --- docker/asterisk ----------------------------------------------------------------------------------


def _asterisklint(extensions_conf: Path) -> str:
    binary = Path(sys.executable).with_name("asterisklint")
    result = subprocess.run(
        [str(binary), "dialplan-check", str(extensions_conf)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return (result.stdout + result.stderr).strip() + ("" if result.returncode == 0 else " (exit 1)")


def _freepbx_dialplan(tmp_path: Path, custom: Path) -> Path:
    """FreePBX's extensions.conf includes extensions_custom.conf; here FreePBX's own context the file
    jumps to is a stub, so the linter checks everything of ours."""
    wrapper = tmp_path / "extensions.conf"
    wrapper.write_text(
        f'[general]\nstatic=yes\n\n[globals]\n\n#include "{custom}"\n\n'
        "[from-did-direct]\nexten => _X.,1,NoOp(FreePBX rings the extension)\n"
    )
    return wrapper


def test_dialplan_passes_asterisklint(tmp_path: Path) -> None:
    assert _asterisklint(ASTERISK / "extensions.conf") == ""
    freepbx = _freepbx_dialplan(tmp_path, ASTERISK / "freepbx" / "extensions_custom.conf")
    assert _asterisklint(freepbx) == ""


def test_asterisklint_catches_a_misspelt_function(tmp_path: Path) -> None:
    broken = tmp_path / "extensions_custom.conf"
    text = (ASTERISK / "freepbx" / "extensions_custom.conf").read_text(encoding="utf-8")
    broken.write_text(text.replace("URIENCODE", "URIENKODE"))
    assert "E_FUNC_MISSING" in _asterisklint(_freepbx_dialplan(tmp_path, broken))


def _manager_users(path: Path) -> dict[str, dict[str, list[str]]]:
    """manager.conf as {section: {key: [values, in order]}} (keys repeat: permit, deny)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        header = re.fullmatch(r"\[([^\]]+)\](\(\+\))?", line)
        if header:
            current = sections.setdefault(header.group(1), {})
            continue
        key, _, value = line.partition("=")
        assert current is not None and _, f"{path}: {raw!r}"
        current.setdefault(key.strip().lower(), []).append(value.strip())
    return sections


def _captured_event_classes() -> dict[str, str]:
    classes: dict[str, str] = {}
    for capture in TRACES.glob("*.ami"):
        for frame in capture.read_bytes().decode("utf-8", "replace").split("\r\n\r\n"):
            event = re.search(r"^Event: (\S+)", frame, re.M)
            privilege = re.search(r"^Privilege: (\S+)", frame, re.M)
            if event and privilege:
                classes[event.group(1)] = privilege.group(1).split(",")[0]
    assert classes, f"no captures in {TRACES}"
    return classes


def _actions_sent() -> set[str]:
    """Every AMI action the code sends, as `{"Action": "Ping"}` or, in doctor's probe, `.send("Ping")`."""
    packages = ("ami", "api", "calltracking", "recordings", "transcription")
    paths = [path for package in packages for path in (ROOT / package).rglob("*.py")]
    sources = "\n".join(path.read_text(encoding="utf-8") for path in paths)
    written = re.findall(r'"Action": "(\w+)"|\.send\("(\w+)"', sources)
    return {action for pair in written for action in pair if action}


def _needed_read_classes() -> set[str]:
    captured = _captured_event_classes()
    needed = set()
    for event in [*PARSED_EVENTS, "Shutdown"]:
        if event in captured:
            needed.add(captured[event])
        else:
            assert event in EVENT_CLASSES_NOT_IN_CAPTURES, f"which AMI class carries {event}?"
            if (cls := EVENT_CLASSES_NOT_IN_CAPTURES[event]) is not None:
                needed.add(cls)
    return needed


def _classes(user: dict[str, list[str]], key: str) -> set[str]:
    return {part.strip() for value in user[key] for part in value.split(",") if part.strip()}


@pytest.mark.parametrize("path", ["manager.conf", "freepbx/manager_custom.conf"])
def test_ami_user_holds_the_smallest_classes_the_service_needs(path: str) -> None:
    user = _manager_users(ASTERISK / path)["calltracking"]
    read, write = _classes(user, "read"), _classes(user, "write")
    assert read == _needed_read_classes()
    actions = _actions_sent()
    assert {"Originate", "CoreShowChannels", "Ping"} <= actions
    for action in actions:
        assert action in ACTION_CLASSES, f"which AMI class allows {action}?"
        if action not in OPTIONAL_ACTIONS:
            assert not ACTION_CLASSES[action] or write & set(ACTION_CLASSES[action]), action
    assert not write & TOO_POWERFUL
    assert user["deny"] == ["0.0.0.0/0.0.0.0"] and user["permit"]
    assert user["secret"][0] and not user["secret"][0].startswith(" ")


def test_manager_conf_timestamps_events() -> None:
    general = _manager_users(ASTERISK / "manager.conf")["general"]
    assert general["timestampevents"] == ["yes"] and general["enabled"] == ["yes"]


def test_needed_classes_are_those_of_the_captured_events() -> None:
    needed = _needed_read_classes()
    assert {"call", "dialplan", "agent", "system"} == needed
    assert "reporting" in ACTION_CLASSES["CoreShowChannels"]


# --- docker/systemd ------------------------------------------------------------------------------------

UNITS = ["calltracking.service", "calltracking-worker.service"]


def _unit(name: str) -> configparser.RawConfigParser:
    return _unit_file(SYSTEMD / name)


def _runnable_copies(tmp_path: Path) -> Iterator[Path]:
    """The units with ExecStart pointing at this checkout's `calltracking` (verify wants it to exist)."""
    binary = Path(sys.executable).with_name("calltracking")
    for name in UNITS:
        copy = tmp_path / name
        text = (SYSTEMD / name).read_text(encoding="utf-8")
        copy.write_text(text.replace("/opt/calltracking/venv/bin/calltracking", str(binary)))
        yield copy


def test_systemd_units_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        # No systemd here: the keys are still read back by the tests below, which need no systemd.
        for name in UNITS:
            assert _unit(name).get("Service", "ExecStart")
        return
    copies = list(_runnable_copies(tmp_path))
    result = subprocess.run(
        [analyze, "verify", *map(str, copies)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    # verify only warns (exit 0) on an unknown key or a bad value: any word from it is a failure.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_systemd_verify_reports_a_misspelt_key(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    [copy, _] = list(_runnable_copies(tmp_path))
    copy.write_text(copy.read_text(encoding="utf-8").replace("ProtectSystem=", "ProtectSytem="))
    if analyze is None:
        assert not _unit_file(copy).has_option("Service", "ProtectSystem")
        return
    result = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=120, check=False
    )
    assert "ProtectSytem" in result.stderr


def _unit_file(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path, encoding="utf-8")
    return parser


@pytest.mark.parametrize("name", UNITS)
def test_systemd_unit_is_hardened_and_restarts(name: str) -> None:
    service = _unit(name)["Service"]
    assert service["User"] not in ("root", "0")
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "Restart": "on-failure",
        "KillMode": "mixed",
    }.items():
        assert service[key] == value, key
    assert "/var/lib/calltracking" in service["ReadWritePaths"].split()
    families = set(service["RestrictAddressFamilies"].split())
    assert families == {"AF_UNIX", "AF_INET", "AF_INET6"}
    # Stopping flushes the journal and drains live events, each bounded by SHUTDOWN_FLUSH_SECONDS.
    assert int(service["TimeoutStopSec"]) >= 4 * SHUTDOWN_FLUSH_SECONDS
    exec_start = service["ExecStart"].split()
    assert exec_start[0] == "/opt/calltracking/venv/bin/calltracking"
    cli_parser().parse_args(exec_start[1:])
    assert service["Environment"] == "CALLTRACKING_CONFIG=/etc/calltracking/calltracking.toml"
