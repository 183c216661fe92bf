"""The AMI link failing in the ways real links fail, against the real client over TCP."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from ami.capture_peer import PeerSession, frame, greeting_frames
from calltracking.app.runtime import call_pipeline
from tests.helpers.captures import capture
from tests.helpers.listening import (
    CollectingSink,
    database_settings,
    listening,
    pbx_for,
    running_peer,
    sessions_played,
    stored_calls,
    until,
)

CALL = "inbound_single_answered"
BRIDGE = "050b71b4-1b9a-4cf7-81a4-3f3d37c18ce6"
LIVE_CHANNELS = [
    {
        "Channel": "PJSIP/provider-00000000",
        "Uniqueid": "1795349935.0",
        "Linkedid": "1795349935.0",
        "Context": "from-trunk",
        "Exten": "74951110001",
        "CallerIDNum": "+79161234567",
        "ChannelState": "6",
        "ChannelStateDesc": "Up",
        "BridgeId": BRIDGE,
        "Duration": "00:00:03",
        "Application": "Dial",
    },
    {
        "Channel": "PJSIP/101-00000001",
        "Uniqueid": "1795349935.1",
        "Linkedid": "1795349935.0",
        "Context": "from-internal",
        "Exten": "",
        "CallerIDNum": "101",
        "ChannelState": "6",
        "ChannelStateDesc": "Up",
        "BridgeId": BRIDGE,
        "Duration": "00:00:03",
        "Application": "AppDial",
    },
]


def mid_call_cut() -> tuple[bytes, bytes]:
    """The capture split while the customer and 101 are talking."""
    data = capture(CALL)
    cut = data.index(b"Event: RTCPSent")
    return data[:cut], data[cut:]


async def test_link_dropped_mid_call_and_back_logs_the_call_once(database_url: str, tmp_path: Path) -> None:
    before, after = mid_call_cut()
    sessions = [
        PeerSession.from_capture(before),
        PeerSession(greeting=greeting_frames(), body=after, snapshot=LIVE_CHANNELS),
    ]

    async with call_pipeline(database_settings(database_url, tmp_path)) as pipeline:
        async with running_peer(sessions) as peer, listening(peer, pipeline.call_log) as listener:
            await sessions_played(listener, 2)
        await pipeline.call_log.flush()

    [stored] = await stored_calls(database_url)
    call = stored.call
    assert (call.status.value, call.answered_by, call.reconciled, round(call.talk_seconds)) == (
        "answered",
        "101",
        False,
        6,
    )


async def test_call_that_ends_while_the_link_is_down_is_logged_reconciled(
    database_url: str, tmp_path: Path
) -> None:
    before, _ = mid_call_cut()
    sessions = [PeerSession.from_capture(before), PeerSession(greeting=greeting_frames(), close_at_end=False)]

    async with call_pipeline(database_settings(database_url, tmp_path)) as pipeline:
        async with running_peer(sessions) as peer, listening(peer, pipeline.call_log) as listener:
            await until(lambda: listener.calls_completed == 1)
        await pipeline.call_log.flush()

    [stored] = await stored_calls(database_url)
    call = stored.call
    assert (call.status.value, call.answered_by, call.reconciled) == ("answered", "101", True)
    assert call.ended_at >= call.answered_at  # type: ignore[operator]


async def test_a_handler_that_raises_loses_neither_the_link_nor_the_events_after_it() -> None:
    sink = CollectingSink()
    failures = []

    def explode_once(event: object) -> None:
        if not failures:
            failures.append(event)
            raise RuntimeError("a bug in a handler")

    async with running_peer([PeerSession.from_capture(capture(CALL))]) as peer:
        from ami.listener import PbxListener

        listener = PbxListener(pbx_for(peer), sink, event_observer=explode_once)
        with capture_logs() as logs:
            listener.start()
            await sessions_played(listener, 1)
            await listener.close()

    assert [entry["event"] for entry in logs if entry["log_level"] == "error"] == ["ami_event_handler_failed"]
    assert listener.connection.sessions == 1
    [call] = sink.calls
    assert (call.status.value, call.answered_by) == ("answered", "101")


async def test_unanswered_ping_drops_the_link_and_reconnects() -> None:
    silent = PeerSession(
        greeting=greeting_frames(), close_at_end=False, action_replies={"ping": lambda _: []}
    )
    healthy = PeerSession(greeting=greeting_frames(), close_at_end=False)
    sink = CollectingSink()

    with capture_logs() as logs:
        async with (
            running_peer([silent, healthy]) as peer,
            listening(
                peer, sink, pbx_for(peer, ping_interval_seconds=0.05, ping_timeout_seconds=0.05)
            ) as listener,
        ):
            await until(lambda: listener.connection.sessions == 2)

    assert "ami_ping_unanswered" in [entry["event"] for entry in logs]
    assert peer.connections == 2


async def test_refused_login_is_logged_and_retried_with_backoff() -> None:
    def refuse(action: dict[str, str]) -> list[bytes]:
        return [
            frame({"Response": "Error", "ActionID": action["actionid"], "Message": "Authentication failed"})
        ]

    refused = [
        PeerSession(
            greeting=b"Asterisk Call Manager/11.0.0\r\n", close_at_end=False, action_replies={"login": refuse}
        )
        for _ in range(3)
    ]
    sink = CollectingSink()
    with capture_logs() as logs:
        async with (
            running_peer(refused) as peer,
            listening(
                peer, sink, pbx_for(peer, reconnect_initial_seconds=0.01, reconnect_max_seconds=0.02)
            ) as listener,
        ):
            await until(lambda: peer.connections == 3)

    assert [entry["event"] for entry in logs].count("ami_login_failed") >= 2
    assert listener.connection.sessions == 0
    # Each refusal drops the link; the wait before the next try doubles, up to the maximum.
    delays = [entry["retry_in_seconds"] for entry in logs if entry["event"] == "ami_connection_lost"]
    assert delays[:2] == [0.01, 0.02]
    assert set(delays[2:]) <= {0.02, None}  # None: lost because the listener closed


async def test_no_pbx_yet_means_waiting_not_failing() -> None:
    sink = CollectingSink()
    async with running_peer([]) as peer:
        port = peer.port
    # Nothing listens on that port any more: the listener keeps retrying, with growing delays.
    from ami.listener import PbxListener
    from calltracking.config import PbxSettings

    listener = PbxListener(
        PbxSettings(port=port, reconnect_initial_seconds=0.01, reconnect_max_seconds=0.04), sink
    )
    with capture_logs() as logs:
        listener.start()
        await until(lambda: sum(entry["event"] == "ami_connect_failed" for entry in logs) >= 4)
        await listener.close()

    delays = [entry["retry_in_seconds"] for entry in logs if entry["event"] == "ami_connect_failed"]
    assert delays[:4] == [0.01, 0.02, 0.04, 0.04]
