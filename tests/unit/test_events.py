from __future__ import annotations

import pytest
from panoramisk.message import Message

from ami.events import (
    CallPickedUp,
    CallTransferred,
    ChannelCreated,
    DialBegan,
    DialEnded,
    MalformedEvent,
    OriginateResponded,
    VariableSet,
    channel_endpoint,
    dialed_number,
    event_time,
    is_worth_parsing,
    parse_event,
)


def message(**fields: str) -> Message:
    return Message(fields)


def test_newchannel_becomes_channel_created() -> None:
    event = parse_event(
        message(
            Event="Newchannel",
            Uniqueid="1.5",
            Linkedid="1.4",
            Channel="PJSIP/101-00000005",
            Context="from-internal",
            Exten="102",
            CallerIDNum="101",
            ChannelState="4",
        ),
        12.5,
    )
    assert isinstance(event, ChannelCreated)
    assert (event.ref.uniqueid, event.ref.linkedid, event.exten, event.state, event.at) == (
        "1.5",
        "1.4",
        "102",
        4,
        12.5,
    )


def test_originate_dial_has_no_caller_channel() -> None:
    event = parse_event(message(Event="DialBegin", DestUniqueid="9.1", DestChannel="PJSIP/103-00000019"), 1.0)
    assert isinstance(event, DialBegan)
    assert event.caller is None and event.dest.uniqueid == "9.1"


def test_only_tracked_variables_become_events() -> None:
    base = {"Event": "VarSet", "Uniqueid": "1.1", "Channel": "PJSIP/1-1"}
    assert parse_event(message(**base, Variable="RTPAUDIOQOS", Value="x"), 1.0) is None
    event = parse_event(message(**base, Variable="CRM_REQUEST_ID", Value="req-1"), 1.0)
    assert isinstance(event, VariableSet) and event.value == "req-1"


def test_failed_originate_has_no_uniqueid() -> None:
    event = parse_event(
        message(
            Event="OriginateResponse",
            ActionID="c2c-2",
            Response="Failure",
            Channel="PJSIP/103",
            Exten="89165550000",
            Reason="3",
            Uniqueid="<unknown>",
        ),
        1.0,
    )
    assert isinstance(event, OriginateResponded)
    assert (event.uniqueid, event.is_success, event.reason) == (None, False, 3)


def test_unknown_events_are_ignored() -> None:
    assert parse_event(message(Event="RTCPSent", Uniqueid="1.1"), 1.0) is None
    assert parse_event(message(Foo="bar"), 1.0) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"Event": "Hangup", "Channel": "PJSIP/1-1"},
        {"Event": "Newchannel", "Uniqueid": "1.1", "ChannelState": "up"},
        {"Event": "BridgeEnter", "Uniqueid": "1.1"},
        {"Event": "DialBegin", "Uniqueid": "1.1"},
    ],
)
def test_known_event_missing_a_field_is_malformed(fields: dict[str, str]) -> None:
    with pytest.raises(MalformedEvent):
        parse_event(message(**fields), 1.0)


def test_repeated_header_takes_the_first_value() -> None:
    event = parse_event(Message({"Event": "Hangup", "Uniqueid": ["1.1", "2.2"], "Cause": "16"}), 1.0)
    assert event is not None and event.ref.uniqueid == "1.1"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1795349935.246660", 1795349935.24666), ("", None), ("nan", None), ("-5", None), ("1e30", None)],
)
def test_event_time_accepts_only_sane_epochs(raw: str, expected: float | None) -> None:
    assert event_time(message(Timestamp=raw)) == expected


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        ("PJSIP/101-0000001a", ("PJSIP", "101")),
        ("PJSIP/provider-00000000", ("PJSIP", "provider")),
        ("SIP/my-trunk-0000abcd", ("SIP", "my-trunk")),
        ("Local/102@from-queue-00000001;2", ("Local", "102@from-queue")),
        ("PJSIP/103", ("PJSIP", "103")),
        ("garbage", ("garbage", "")),
    ],
)
def test_channel_endpoint(channel: str, expected: tuple[str, str]) -> None:
    assert channel_endpoint(channel) == expected


@pytest.mark.parametrize(
    ("frame", "wanted"),
    [
        (b"Event: Newchannel\r\nUniqueid: 1.1", True),
        (b"Event: RTCPSent\r\nUniqueid: 1.1", False),
        (b"Event: DeviceStateChange\r\nDevice: PJSIP/101", False),
        (b"Event: VarSet\r\nChannel: x\r\nVariable: RTPAUDIOQOS\r\nValue: y", False),
        (b"Event: VarSet\r\nChannel: x\r\nVariable: MIXMONITOR_FILENAME\r\nValue: /a.wav", True),
        (b"Event: VarSet\r\nChannel: x", True),
        (b"Event: CoreShowChannelsComplete\r\nActionID: 7", True),
        (b"Event: Shutdown\r\nShutdown: Uncleanly", True),
        (b"Response: Success\r\nActionID: 7", True),
        (b"Privilege: call,all\r\nEvent: Newstate", True),
        (b"\x00\xffjunk", True),
    ],
)
def test_only_frames_nobody_needs_are_dropped_before_parsing(frame: bytes, wanted: bool) -> None:
    assert is_worth_parsing(frame) is wanted


def test_pickup_names_the_picker_and_the_ringing_target() -> None:
    event = parse_event(
        message(
            Event="Pickup",
            Channel="PJSIP/102-00000032",
            Uniqueid="4.3",
            Linkedid="4.3",
            TargetChannel="PJSIP/101-00000031",
            TargetUniqueid="4.2",
            TargetLinkedid="4.1",
        ),
        403.0,
    )
    assert isinstance(event, CallPickedUp)
    assert (event.picker.uniqueid, event.target.uniqueid, event.target.linkedid) == ("4.3", "4.2", "4.1")


def test_attended_transfer_names_the_original_transferer_and_the_transferee() -> None:
    event = parse_event(
        message(
            Event="AttendedTransfer",
            Result="Success",
            OrigTransfererChannel="PJSIP/101-0000008c",
            OrigTransfererUniqueid="1796011695.162",
            OrigTransfererLinkedid="1796011695.161",
            SecondTransfererChannel="PJSIP/101-0000008c",
            SecondTransfererUniqueid="1796011695.162",
            TransfereeChannel="PJSIP/provider-0000008b",
            TransfereeUniqueid="1796011695.161",
            TransfereeLinkedid="1796011695.161",
        ),
        7.0,
    )
    assert isinstance(event, CallTransferred)
    assert event.is_attended
    assert event.transferer.uniqueid == "1796011695.162"
    assert event.transferee is not None and event.transferee.uniqueid == "1796011695.161"


def test_blind_transfer_without_a_transferee_as_older_asterisk_sends_it() -> None:
    event = parse_event(
        message(
            Event="BlindTransfer",
            Result="Success",
            TransfererChannel="PJSIP/101-00000060",
            TransfererUniqueid="7.1",
            TransfererLinkedid="7.1",
            Extension="103",
        ),
        710.0,
    )
    assert isinstance(event, CallTransferred)
    assert (event.is_attended, event.transferer.uniqueid, event.transferee) == (False, "7.1", None)


@pytest.mark.parametrize("result", ["Fail", "Invalid", "Not Permitted", ""])
def test_a_transfer_that_did_not_happen_is_no_event(result: str) -> None:
    frame = message(Event="BlindTransfer", Result=result, TransfererUniqueid="7.1", TransfererChannel="x")
    assert parse_event(frame, 1.0) is None


def test_dial_end_keeps_the_forward_a_phone_answered_with() -> None:
    event = parse_event(
        message(
            Event="DialEnd",
            Uniqueid="2.1",
            Channel="PJSIP/provider-00000010",
            DestUniqueid="2.2",
            DestChannel="PJSIP/101-00000011",
            DialStatus="CANCEL",
            Forward="89167654321",
        ),
        200.0,
    )
    assert isinstance(event, DialEnded)
    assert (event.dial_status, event.forward) == ("CANCEL", "89167654321")


@pytest.mark.parametrize(
    ("dial_string", "expected"),
    [
        ("89167654321@provider", "89167654321"),
        ("provider/89167654321", "89167654321"),
        ("provider/sip:+79167654321@10.0.0.1:5060", "+79167654321"),
        ("101", "101"),
        ("g0/89167654321,30", "89167654321"),
        ("", ""),
    ],
)
def test_dialed_number_drops_technology_trunk_and_options(dial_string: str, expected: str) -> None:
    assert dialed_number(dial_string) == expected
