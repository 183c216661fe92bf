"""Each configured PBX, judged from one short AMI session (`ami.probe`): reachable and logged in, the
actions the service sends allowed, call events arriving, timestamped, the trunk endpoints known."""

from __future__ import annotations

from ami.probe import PbxProbe, probe_pbx
from calltracking.app.doctor.result import CheckResult, fail, ok, warn
from calltracking.config import PbxSettings

# Read classes the listener needs (ami/events.py): call (channels, dials, bridges, hangups, transfers,
# MixMonitorStart, OriginateResponse), dialplan (Newexten, VarSet: recording names, click-to-call ids),
# agent (queue callers), system (FullyBooted).
READ_CLASSES = "call,dialplan,agent,system"
RELOAD = "then `manager reload` on the Asterisk CLI"


async def check_pbx(pbx: PbxSettings, listen_seconds: float) -> list[CheckResult]:
    return judge_pbx(pbx, await probe_pbx(pbx, listen_seconds))


def judge_pbx(pbx: PbxSettings, probe: PbxProbe) -> list[CheckResult]:
    name = f"pbx {pbx.name}"
    if probe.unreachable is not None:
        return [
            fail(
                name,
                probe.unreachable,
                f"check host and port in [[pbx]] '{pbx.name}', that Asterisk runs with [general] "
                "enabled = yes (and bindaddr) in manager.conf, and that no firewall is in the way",
            )
        ]
    if probe.login_refused is not None:
        return [
            fail(
                name,
                f"AMI login refused for user {pbx.username} ({probe.login_refused})",
                f"check secret in [[pbx]] '{pbx.name}' and manager.conf ([{pbx.username}] secret, "
                "permit/deny for this host)",
            )
        ]
    return [
        ok(name, f"{pbx.host}:{pbx.port} logged in as {pbx.username} ({probe.banner})"),
        _actions(pbx, probe),
        _events(pbx, probe),
        _timestamps(pbx, probe),
        _trunks(pbx, probe),
    ]


def _actions(pbx: PbxSettings, probe: PbxProbe) -> CheckResult:
    name = f"pbx {pbx.name} actions"
    allowed = {action.lower() for action in probe.allowed_actions or ()}
    fix_user = f"in manager.conf [{pbx.username}]"
    if probe.channels_before is None or not probe.channels_before.is_allowed:
        said = probe.channels_before.message if probe.channels_before else ""
        return fail(
            name,
            f"CoreShowChannels refused ({said or 'no answer'}): calls in progress are not rebuilt after "
            "a reconnect",
            f"add reporting (or system) to write = {fix_user}, {RELOAD}",
        )
    if probe.allowed_actions is not None and "originate" not in allowed:
        return warn(
            name,
            "Originate is not allowed: click-to-call requests will be refused by the PBX",
            f"add originate to write = {fix_user} if click-to-call is used, {RELOAD}",
        )
    return ok(name, "CoreShowChannels and Originate allowed")


def _events(pbx: PbxSettings, probe: PbxProbe) -> CheckResult:
    name = f"pbx {pbx.name} events"
    classes = set().union(*(event.classes for event in probe.events if event.name != "FullyBooted"))
    new = probe.new_channels
    listened = f"{probe.listened_seconds:g} s"
    fix = f"set read = {READ_CLASSES} in manager.conf [{pbx.username}], {RELOAD}"
    if "call" not in classes:
        if new:
            return fail(
                name,
                f"{len(new)} channel(s) appeared in {listened} ({new[0]}...) but no call event arrived: "
                "the AMI user's read classes leave them out, so no call is logged",
                fix,
            )
        return warn(
            name,
            f"no call happened in the {listened} listened, so call events arriving is not proven",
            "run `calltracking doctor --listen 60` and make a test call meanwhile",
        )
    if new and "dialplan" not in classes:
        return warn(
            name,
            "call events arrive but no dialplan events (Newexten, VarSet): recording names and "
            "click-to-call ids are missed",
            fix,
        )
    return ok(name, f"events arrive (classes seen: {', '.join(sorted(classes))})")


def _timestamps(pbx: PbxSettings, probe: PbxProbe) -> CheckResult:
    name = f"pbx {pbx.name} timestamps"
    # The FullyBooted answering a Login is written outside Asterisk's event path: never timestamped.
    events = [event for event in probe.events if event.name != "FullyBooted"]
    fix = f"set timestampevents = yes in [general] of manager.conf, {RELOAD}"
    if not events:
        return warn(
            name,
            f"no event arrived in {probe.listened_seconds:g} s to check for a Timestamp",
            "run `calltracking doctor --listen 60` and make a test call meanwhile",
        )
    bare = [event.name for event in events if not event.has_timestamp]
    if bare:
        return fail(
            name,
            f"{len(bare)} of {len(events)} events without a Timestamp (e.g. {bare[0]}): call times would "
            "be when the service received them, not when they happened",
            fix,
        )
    return ok(name, f"{len(events)} event(s), all with a Timestamp")


def _trunks(pbx: PbxSettings, probe: PbxProbe) -> CheckResult:
    name = f"pbx {pbx.name} trunks"
    if not pbx.trunk_endpoints:
        return ok(name, f"trunks by context only ({', '.join(pbx.trunk_contexts) or 'none'})")
    seen = probe.channel_endpoints
    listing = probe.endpoints
    if listing is not None and listing.is_allowed:
        known = {item.get("ObjectName", "") for item in listing.items}
        missing = [endpoint for endpoint in pbx.trunk_endpoints if endpoint not in known]
        if missing:
            return warn(
                name,
                f"trunk endpoint(s) {', '.join(missing)} not among the PBX's {len(known)} PJSIP endpoints: "
                "calls on them would not count as inbound/outbound",
                f"compare [[pbx]] '{pbx.name}' trunk_endpoints with `pjsip show endpoints`",
            )
        return ok(name, f"trunk endpoint(s) {', '.join(pbx.trunk_endpoints)} exist")
    on_trunks = sorted(seen & set(pbx.trunk_endpoints))
    if on_trunks:
        return ok(name, f"channels seen on trunk endpoint(s) {', '.join(on_trunks)}")
    said = listing.message if listing is not None else ""
    return warn(
        name,
        f"cannot list PJSIP endpoints ({said or 'no answer'}; PJSIPShowEndpoints needs write = system) "
        f"and no channel on {', '.join(pbx.trunk_endpoints)} was up: whether they exist is unknown",
        f"compare [[pbx]] '{pbx.name}' trunk_endpoints with `pjsip show endpoints`, or make a call on the "
        "trunk during `calltracking doctor --listen 60`",
    )
