from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calltracking.calls.record import CallLeg, CallRecord, Direction, LegKind
from calltracking.calls.recording import Part, Side
from recordings.sources import (
    MAX_PATH_LENGTH,
    PathRefused,
    relative_pbx_path,
    rx_side,
    side_parts,
    source_candidates,
)
from tests.helpers.factories import T0, make_call

MONITOR = "/var/spool/asterisk/monitor"
SHARED_CAPTURE_NAME = "in-74951110001-+79161234567-20261122-121855-1795349935.0"
SHARED_CAPTURE_PATH = f"{MONITOR}/2026/11/22/{SHARED_CAPTURE_NAME}.wav"
FREEPBX_NAME = "external-101-+79161234567-20261122-235959-1795349935.0"
TRUNK_CHANNEL = "PJSIP/provider-00000001"
DESK_CHANNEL = "PJSIP/101-00000002"


def _p(path: str) -> PurePosixPath:
    return PurePosixPath(path)


# relative_pbx_path


@pytest.mark.parametrize(
    ("pbx_path", "monitor_dir", "expected"),
    [
        (f"{MONITOR}/2026/11/22/x.wav", MONITOR, "2026/11/22/x.wav"),
        (f"{MONITOR}/x.wav", f"{MONITOR}/", "x.wav"),
        (f"{MONITOR}/x.wav", f"{MONITOR}//", "x.wav"),
        (f"{MONITOR}//2026//11/./22/x.wav", MONITOR, "2026/11/22/x.wav"),
        (f"{MONITOR}/./x.wav", MONITOR, "x.wav"),
        ("/var/spool//asterisk/./monitor/x.wav", MONITOR, "x.wav"),
        (f"{MONITOR}/2026/../x.wav", MONITOR, "x.wav"),
    ],
)
def test_absolute_path_inside_monitor_dir_maps_to_normalised_relative_path(
    pbx_path: str, monitor_dir: str, expected: str
) -> None:
    assert relative_pbx_path(pbx_path, monitor_dir) == _p(expected)


@pytest.mark.parametrize(
    ("pbx_path", "expected"),
    [
        ("x.wav", "x.wav"),
        ("./x.wav", "x.wav"),
        ("2026/11/22/x.wav", "2026/11/22/x.wav"),
        ("2026/11/../11/22//x.wav", "2026/11/22/x.wav"),
    ],
)
def test_relative_name_is_taken_as_inside_monitor_dir(pbx_path: str, expected: str) -> None:
    assert relative_pbx_path(pbx_path, MONITOR) == _p(expected)


@pytest.mark.parametrize(
    "pbx_path",
    [
        f"{MONITOR}/../../etc/passwd",
        f"{MONITOR}/2026/../../x.wav",
        "../x.wav",
        "2026/../../x",
        "./../monitor-other/x.wav",
        "/etc/passwd",
        "/x.wav",
    ],
)
def test_path_escaping_monitor_dir_is_refused(pbx_path: str) -> None:
    with pytest.raises(PathRefused):
        relative_pbx_path(pbx_path, MONITOR)


@pytest.mark.parametrize("pbx_path", [MONITOR, f"{MONITOR}/", f"{MONITOR}/.", ".", "./", "2026/.."])
def test_monitor_dir_itself_is_refused(pbx_path: str) -> None:
    with pytest.raises(PathRefused):
        relative_pbx_path(pbx_path, MONITOR)


@pytest.mark.parametrize(
    "pbx_path", ["/var/spool/asterisk/monitor-other/x.wav", "/var/spool/asterisk/monitorx.wav"]
)
def test_sibling_dir_sharing_the_prefix_is_refused(pbx_path: str) -> None:
    with pytest.raises(PathRefused):
        relative_pbx_path(pbx_path, MONITOR)


@pytest.mark.parametrize(
    "pbx_path",
    ["", "x\x00.wav", f"{MONITOR}/x\x00.wav", "x\n.wav", "x\r.wav", "x\t.wav", "\x1b[31mx.wav", "x.wav\n"],
)
def test_empty_or_control_characters_are_refused(pbx_path: str) -> None:
    with pytest.raises(PathRefused):
        relative_pbx_path(pbx_path, MONITOR)


@pytest.mark.parametrize("pbx_path", ["x\x7f.wav", "\x9b31mx.wav", "x\x85.wav"])
def test_delete_and_c1_control_characters_are_refused(pbx_path: str) -> None:
    with pytest.raises(PathRefused):
        relative_pbx_path(pbx_path, MONITOR)


def test_over_long_path_is_refused() -> None:
    with pytest.raises(PathRefused):
        relative_pbx_path("a/" * (MAX_PATH_LENGTH // 2) + "x.wav", MONITOR)


def test_path_of_maximum_length_is_accepted() -> None:
    name = "x" * (MAX_PATH_LENGTH - len(MONITOR) - 1)
    assert relative_pbx_path(f"{MONITOR}/{name}", MONITOR) == _p(name)


@given(pbx_path=st.text(max_size=200))
def test_any_text_is_refused_or_maps_inside_monitor_dir(pbx_path: str) -> None:
    try:
        relative = relative_pbx_path(pbx_path, MONITOR)
    except PathRefused:
        return
    assert not relative.is_absolute()
    assert ".." not in relative.parts
    assert relative.parts and relative != _p(".")


PATH_PIECES = st.sampled_from(["..", ".", "", "2026", "x.wav", MONITOR.lstrip("/"), "monitor-other"])


@given(pieces=st.lists(PATH_PIECES, min_size=1, max_size=8), absolute=st.booleans())
def test_dot_segment_soup_is_refused_or_maps_inside_monitor_dir(pieces: list[str], absolute: bool) -> None:
    pbx_path = ("/" if absolute else "") + "/".join(pieces)
    try:
        relative = relative_pbx_path(pbx_path, MONITOR)
    except PathRefused:
        return
    assert not relative.is_absolute()
    assert ".." not in relative.parts
    assert relative.parts and relative != _p(".")


# source_candidates


def test_shared_capture_path_is_the_first_mix_candidate_with_rx_and_tx_siblings() -> None:
    found = source_candidates(SHARED_CAPTURE_PATH, MONITOR, (T0,), "UTC")
    day = "2026/11/22"
    assert found.mix == (_p(f"{day}/{SHARED_CAPTURE_NAME}.wav"),)
    assert found.rx == (_p(f"{day}/{SHARED_CAPTURE_NAME}-rx.wav"), _p(f"{day}/{SHARED_CAPTURE_NAME}-in.wav"))
    assert found.tx == (_p(f"{day}/{SHARED_CAPTURE_NAME}-tx.wav"), _p(f"{day}/{SHARED_CAPTURE_NAME}-out.wav"))
    assert found.raw_rate is None


def test_full_path_is_not_also_looked_for_under_dated_directories() -> None:
    found = source_candidates(SHARED_CAPTURE_PATH, MONITOR, (T0 + timedelta(days=3),), "UTC")
    assert len(found.mix) == 1


def test_freepbx_bare_name_is_looked_for_in_root_then_under_local_date() -> None:
    found = source_candidates(f"{FREEPBX_NAME}.wav", MONITOR, (T0,), "UTC")
    assert found.mix == (_p(f"{FREEPBX_NAME}.wav"), _p(f"2026/11/22/{FREEPBX_NAME}.wav"))
    assert found.rx[:2] == (_p(f"{FREEPBX_NAME}-rx.wav"), _p(f"{FREEPBX_NAME}-in.wav"))
    assert _p(f"2026/11/22/{FREEPBX_NAME}-tx.wav") in found.tx
    assert _p(f"2026/11/22/{FREEPBX_NAME}-out.wav") in found.tx


def test_utc_evening_call_on_moscow_pbx_is_under_next_local_day() -> None:
    started = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)
    found = source_candidates(f"{FREEPBX_NAME}.wav", MONITOR, (started,), "Europe/Moscow")
    assert found.mix == (_p(f"{FREEPBX_NAME}.wav"), _p(f"2026/11/23/{FREEPBX_NAME}.wav"))


def test_call_spanning_local_midnight_is_looked_for_under_both_days() -> None:
    started = datetime(2026, 11, 22, 20, 50, tzinfo=UTC)  # 23:50 in Moscow
    ended = started + timedelta(minutes=20)  # 00:10 the next day in Moscow
    found = source_candidates(f"{FREEPBX_NAME}.wav", MONITOR, (started, ended), "Europe/Moscow")
    assert found.mix == (
        _p(f"{FREEPBX_NAME}.wav"),
        _p(f"2026/11/22/{FREEPBX_NAME}.wav"),
        _p(f"2026/11/23/{FREEPBX_NAME}.wav"),
    )


def test_times_on_one_local_day_give_one_dated_candidate() -> None:
    times = (T0, T0 + timedelta(seconds=2), T0 + timedelta(seconds=8))
    found = source_candidates(f"{FREEPBX_NAME}.wav", MONITOR, times, "Europe/Moscow")
    assert found.mix == (_p(f"{FREEPBX_NAME}.wav"), _p(f"2026/11/22/{FREEPBX_NAME}.wav"))


def test_name_without_extension_also_gets_wav_candidates() -> None:
    found = source_candidates("recording", MONITOR, (T0,), "UTC")
    assert found.mix == (
        _p("recording"),
        _p("2026/11/22/recording"),
        _p("recording.wav"),
        _p("2026/11/22/recording.wav"),
    )
    assert _p("2026/11/22/recording-rx.wav") in found.rx
    assert _p("2026/11/22/recording-out.wav") in found.tx


def test_uniqueid_name_without_extension_also_gets_wav_candidates() -> None:
    # FreePBX's CALLFILENAME is the base name, ending in the Uniqueid: its ".0" is not an extension.
    found = source_candidates(SHARED_CAPTURE_NAME, MONITOR, (T0,), "UTC")
    assert _p(f"{SHARED_CAPTURE_NAME}.wav") in found.mix
    assert _p(f"2026/11/22/{SHARED_CAPTURE_NAME}.wav") in found.mix
    assert _p(f"2026/11/22/{SHARED_CAPTURE_NAME}-rx.wav") in found.rx
    assert _p(f"2026/11/22/{SHARED_CAPTURE_NAME}-tx.wav") in found.tx


@pytest.mark.parametrize(
    ("suffix", "rate"),
    [(".raw", 8000), (".sln", 8000), (".sln16", 16000), (".SLN16", 16000), (".sln48", 48000)],
)
def test_raw_stream_has_its_sample_rate(suffix: str, rate: int) -> None:
    found = source_candidates(f"{FREEPBX_NAME}{suffix}", MONITOR, (T0,), "UTC")
    assert found.raw_rate == rate


@pytest.mark.parametrize("suffix", [".raw", ".sln16"])
def test_raw_stream_on_mono_pbx_has_no_raw_rate(suffix: str) -> None:
    found = source_candidates(f"{FREEPBX_NAME}{suffix}", MONITOR, (T0,), "UTC", raw_is_stereo=False)
    assert found.raw_rate is None


@pytest.mark.parametrize("suffix", [".wav", ".WAV", ".gsm", ".ulaw"])
def test_non_raw_recording_has_no_raw_rate(suffix: str) -> None:
    assert source_candidates(f"{FREEPBX_NAME}{suffix}", MONITOR, (T0,), "UTC").raw_rate is None


def test_siblings_of_raw_mix_are_wav() -> None:
    found = source_candidates(f"{MONITOR}/2026/11/22/{FREEPBX_NAME}.sln16", MONITOR, (T0,), "UTC")
    assert found.mix == (_p(f"2026/11/22/{FREEPBX_NAME}.sln16"),)
    assert found.rx == (_p(f"2026/11/22/{FREEPBX_NAME}-rx.wav"), _p(f"2026/11/22/{FREEPBX_NAME}-in.wav"))
    assert found.tx == (_p(f"2026/11/22/{FREEPBX_NAME}-tx.wav"), _p(f"2026/11/22/{FREEPBX_NAME}-out.wav"))


def test_escaping_recording_file_is_refused() -> None:
    with pytest.raises(PathRefused):
        source_candidates(f"{MONITOR}/../../etc/passwd", MONITOR, (T0,), "UTC")


# rx_side / side_parts


def _leg(channel: str, kind: LegKind) -> CallLeg:
    return CallLeg(f"id-{channel}", channel, channel.split("/")[1].split("-")[0], kind, T0, T0, None, 16)


def _recorded_call(direction: Direction, recording_channel: str | None) -> CallRecord:
    legs = (_leg(TRUNK_CHANNEL, LegKind.TRUNK), _leg(DESK_CHANNEL, LegKind.EXTENSION))
    return replace(make_call(), direction=direction, recording_channel=recording_channel, legs=legs)


@pytest.mark.parametrize("direction", list(Direction))
def test_recorded_on_trunk_leg_rx_is_customer(direction: Direction) -> None:
    call = _recorded_call(direction, TRUNK_CHANNEL)
    assert rx_side(call) is Side.CUSTOMER
    assert side_parts(call) == {Side.CUSTOMER: Part.RX, Side.MANAGER: Part.TX}


@pytest.mark.parametrize("direction", list(Direction))
def test_recorded_on_extension_leg_rx_is_manager(direction: Direction) -> None:
    call = _recorded_call(direction, DESK_CHANNEL)
    assert rx_side(call) is Side.MANAGER
    assert side_parts(call) == {Side.MANAGER: Part.RX, Side.CUSTOMER: Part.TX}


@pytest.mark.parametrize(
    ("direction", "rx"),
    [
        (Direction.INBOUND, Side.CUSTOMER),
        (Direction.OUTBOUND, Side.MANAGER),
        (Direction.INTERNAL, Side.MANAGER),
    ],
)
def test_without_recording_channel_rx_follows_direction(direction: Direction, rx: Side) -> None:
    call = _recorded_call(direction, None)
    assert rx_side(call) is rx
    assert side_parts(call)[rx] is Part.RX


@pytest.mark.parametrize(
    ("direction", "rx"), [(Direction.INBOUND, Side.CUSTOMER), (Direction.OUTBOUND, Side.MANAGER)]
)
def test_unknown_recording_channel_rx_follows_direction(direction: Direction, rx: Side) -> None:
    assert rx_side(_recorded_call(direction, "PJSIP/gone-0000000f")) is rx


def test_factory_inbound_call_recorded_on_its_trunk_rx_is_customer() -> None:
    call = make_call(recording_channel=TRUNK_CHANNEL)
    assert side_parts(call) == {Side.CUSTOMER: Part.RX, Side.MANAGER: Part.TX}


def test_side_parts_always_names_both_sides_once() -> None:
    for direction in Direction:
        for channel in (TRUNK_CHANNEL, DESK_CHANNEL, None):
            parts = side_parts(_recorded_call(direction, channel))
            assert set(parts) == set(Side)
            assert sorted(parts.values()) == sorted([Part.RX, Part.TX])
