from __future__ import annotations

import math
from pathlib import Path

import pytest

from calltracking.calls.recording import MP3, Part, Side
from recordings.audio import (
    ANALYSIS_RATE,
    AudioCorrupt,
    AudioInputs,
    EncodeOptions,
    encode,
    encode_command,
    ffmpeg_binary,
    measurement,
    probe,
    wav_is_truncated,
)
from tests.helpers.audio_files import (
    decoded_peak_dbfs,
    peak_dbfs_of,
    silence,
    tone,
    write_cut_header,
    write_garbage,
    write_header_only,
    write_silence,
    write_stereo_raw,
    write_truncated,
    write_unfinalised,
    write_wav,
)

OPTIONS = EncodeOptions(bitrate=16_000, complexity=5)
CUSTOMER_ON_RX = {Side.CUSTOMER: Part.RX, Side.MANAGER: Part.TX}
MANAGER_ON_RX = {Side.MANAGER: Part.RX, Side.CUSTOMER: Part.TX}
MEASURED = ["[measured]", "-f", "null", "-"]
MEASURING = (
    f"[probe]aresample={ANALYSIS_RATE},aformat=sample_fmts=s16:channel_layouts=mono,volumedetect[measured]"
)
TONE_DBFS = peak_dbfs_of(0.5)
QUIET_DBFS = -40.0  # an Opus round trip of digital silence stays far below this


def _inputs_of(args: list[str]) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args) if arg == "-i"]


def _maps_of(args: list[str]) -> list[list[str]]:
    """The command after the filter graph, cut at each `-map`: [label, options..., target] per output."""
    start = args.index("-map")
    segments: list[list[str]] = []
    for arg in args[start:]:
        if arg == "-map":
            segments.append([])
        else:
            segments[-1].append(arg)
    return segments


def _opus_targets(args: list[str]) -> dict[str, str]:
    """Each Opus output file and the stream label mapped to it."""
    return {seg[-1]: seg[0] for seg in _maps_of(args) if "libopus" in seg}


# encode_command


def test_mix_only_command_writes_the_mix_and_measures_it(tmp_path: Path) -> None:
    mix = tmp_path / "m.wav"
    args, outputs = encode_command(AudioInputs(mix=mix), CUSTOMER_ON_RX, tmp_path, OPTIONS)
    assert args[0] == ffmpeg_binary()
    assert _inputs_of(args) == [str(mix)]
    assert outputs == {"mix": tmp_path / "mix.ogg"}
    assert _opus_targets(args) == {str(tmp_path / "mix.ogg"): "[mix]"}
    assert _maps_of(args)[-1] == MEASURED
    assert args[args.index("-filter_complex") + 1].endswith(MEASURING)


def test_mix_with_both_halves_command_writes_each_side_from_its_input(tmp_path: Path) -> None:
    mix, rx, tx = tmp_path / "m.wav", tmp_path / "m-rx.wav", tmp_path / "m-tx.wav"
    args, outputs = encode_command(AudioInputs(mix=mix, rx=rx, tx=tx), CUSTOMER_ON_RX, tmp_path, OPTIONS)
    assert _inputs_of(args) == [str(mix), str(rx), str(tx)]
    assert outputs == {
        "mix": tmp_path / "mix.ogg",
        "customer": tmp_path / "customer.ogg",
        "manager": tmp_path / "manager.ogg",
    }
    assert _opus_targets(args) == {
        str(tmp_path / "mix.ogg"): "[mix]",
        str(tmp_path / "customer.ogg"): "1:a",
        str(tmp_path / "manager.ogg"): "2:a",
    }
    assert _maps_of(args)[-1] == MEASURED


def test_sides_swap_when_rx_is_the_manager(tmp_path: Path) -> None:
    mix, rx, tx = tmp_path / "m.wav", tmp_path / "m-rx.wav", tmp_path / "m-tx.wav"
    args, _ = encode_command(AudioInputs(mix=mix, rx=rx, tx=tx), MANAGER_ON_RX, tmp_path, OPTIONS)
    targets = _opus_targets(args)
    assert targets[str(tmp_path / "manager.ogg")] == "1:a"
    assert targets[str(tmp_path / "customer.ogg")] == "2:a"


def test_halves_without_mix_command_mixes_them(tmp_path: Path) -> None:
    rx, tx = tmp_path / "m-rx.wav", tmp_path / "m-tx.wav"
    args, outputs = encode_command(AudioInputs(rx=rx, tx=tx), CUSTOMER_ON_RX, tmp_path, OPTIONS)
    assert _inputs_of(args) == [str(rx), str(tx)]
    graph = args[args.index("-filter_complex") + 1]
    assert graph.startswith("[0:a][1:a]amix=inputs=2")
    assert set(outputs) == {"mix", "customer", "manager"}
    assert _opus_targets(args) == {
        str(tmp_path / "mix.ogg"): "[mix]",
        str(tmp_path / "customer.ogg"): "0:a",
        str(tmp_path / "manager.ogg"): "1:a",
    }
    assert _maps_of(args)[-1] == MEASURED


def test_mix_with_one_half_writes_only_the_mix(tmp_path: Path) -> None:
    args, outputs = encode_command(
        AudioInputs(mix=tmp_path / "m.wav", rx=tmp_path / "m-rx.wav"), CUSTOMER_ON_RX, tmp_path, OPTIONS
    )
    assert set(outputs) == {"mix"}
    assert list(_opus_targets(args)) == [str(tmp_path / "mix.ogg")]


@pytest.mark.parametrize("rate", [8000, 16000])
def test_stereo_raw_command_reads_signed_linear_and_splits_channels(tmp_path: Path, rate: int) -> None:
    raw = tmp_path / "m.raw"
    args, outputs = encode_command(AudioInputs(mix=raw, raw_rate=rate), CUSTOMER_ON_RX, tmp_path, OPTIONS)
    assert _inputs_of(args) == [str(raw)]
    at = args.index("-i")
    assert args[at - 6 : at] == ["-f", "s16le", "-ar", str(rate), "-ac", "2"]
    assert "channelsplit=channel_layout=stereo[rx][tx]" in args[args.index("-filter_complex") + 1]
    assert set(outputs) == {"mix", "customer", "manager"}
    assert _opus_targets(args) == {
        str(tmp_path / "mix.ogg"): "[mix]",
        str(tmp_path / "customer.ogg"): "[rx]",
        str(tmp_path / "manager.ogg"): "[tx]",
    }
    assert _maps_of(args)[-1] == MEASURED


@pytest.mark.parametrize(
    "inputs", [AudioInputs(), AudioInputs(rx=Path("r.wav")), AudioInputs(tx=Path("t.wav"))], ids=str
)
def test_no_mix_and_not_both_halves_is_refused(tmp_path: Path, inputs: AudioInputs) -> None:
    with pytest.raises(AudioCorrupt):
        encode_command(inputs, CUSTOMER_ON_RX, tmp_path, OPTIONS)


def test_every_opus_output_is_mono_ogg_at_the_configured_bitrate(tmp_path: Path) -> None:
    options = EncodeOptions(bitrate=24_000, complexity=7)
    inputs = AudioInputs(mix=tmp_path / "m.wav", rx=tmp_path / "r.wav", tx=tmp_path / "t.wav")
    args, _ = encode_command(inputs, CUSTOMER_ON_RX, tmp_path, options)
    opus = [seg for seg in _maps_of(args) if "libopus" in seg]
    assert len(opus) == 3
    for seg in opus:
        assert seg[seg.index("-b:a") + 1] == "24000"
        assert seg[seg.index("-compression_level") + 1] == "7"
        assert seg[seg.index("-ac") + 1] == "1"
        assert seg[seg.index("-f") + 1] == "ogg"


# encode on real files


async def test_one_second_tone_measures_one_second_at_its_amplitude(tmp_path: Path) -> None:
    mix = write_wav(tmp_path / "tone.wav", 1.0, amplitude=0.5)
    encoded = await encode(AudioInputs(mix=mix), CUSTOMER_ON_RX, tmp_path, OPTIONS)
    assert encoded.duration_seconds == pytest.approx(1.0, abs=1e-3)
    assert encoded.peak_dbfs == pytest.approx(TONE_DBFS, abs=0.1)
    assert set(encoded.outputs) == {"mix"}
    assert encoded.outputs["mix"].read_bytes().startswith(b"OggS")


async def test_quieter_tone_measures_lower_peak(tmp_path: Path) -> None:
    mix = write_wav(tmp_path / "tone.wav", 0.5, amplitude=0.1)
    encoded = await encode(AudioInputs(mix=mix), CUSTOMER_ON_RX, tmp_path, OPTIONS)
    assert encoded.peak_dbfs == pytest.approx(peak_dbfs_of(0.1), abs=0.1)


async def test_header_only_wav_has_no_duration_and_no_peak(tmp_path: Path) -> None:
    mix = write_header_only(tmp_path / "empty.wav")
    encoded = await encode(AudioInputs(mix=mix), CUSTOMER_ON_RX, tmp_path, OPTIONS)
    assert encoded.duration_seconds == 0
    assert encoded.peak_dbfs == -math.inf


async def test_zeros_have_duration_but_no_peak(tmp_path: Path) -> None:
    mix = write_silence(tmp_path / "zeros.wav", 0.5)
    encoded = await encode(AudioInputs(mix=mix), CUSTOMER_ON_RX, tmp_path, OPTIONS)
    assert encoded.duration_seconds == pytest.approx(0.5, abs=1e-3)
    assert encoded.peak_dbfs == -math.inf


async def test_truncated_wav_decodes_what_is_there(tmp_path: Path) -> None:
    mix = write_truncated(tmp_path / "cut.wav", seconds=1.0, kept_seconds=0.5)
    encoded = await encode(AudioInputs(mix=mix), CUSTOMER_ON_RX, tmp_path, OPTIONS)
    assert encoded.duration_seconds == pytest.approx(0.5, abs=1e-3)
    assert encoded.peak_dbfs == pytest.approx(TONE_DBFS, abs=0.1)


async def test_unfinalised_wav_decodes_what_follows_the_header(tmp_path: Path) -> None:
    mix = write_unfinalised(tmp_path / "open.wav", 0.5)
    encoded = await encode(AudioInputs(mix=mix), CUSTOMER_ON_RX, tmp_path, OPTIONS)
    assert encoded.duration_seconds == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("kept_bytes", [4, 20, 40])
async def test_wav_cut_inside_its_header_is_corrupt(tmp_path: Path, kept_bytes: int) -> None:
    mix = write_cut_header(tmp_path / "cut.wav", kept_bytes)
    with pytest.raises(AudioCorrupt):
        await encode(AudioInputs(mix=mix), CUSTOMER_ON_RX, tmp_path, OPTIONS)


async def test_garbage_is_corrupt(tmp_path: Path) -> None:
    mix = write_garbage(tmp_path / "garbage.wav")
    with pytest.raises(AudioCorrupt):
        await encode(AudioInputs(mix=mix), CUSTOMER_ON_RX, tmp_path, OPTIONS)


async def test_garbage_half_is_corrupt_even_with_a_good_mix(tmp_path: Path) -> None:
    inputs = AudioInputs(
        mix=write_wav(tmp_path / "m.wav", 0.2),
        rx=write_garbage(tmp_path / "m-rx.wav"),
        tx=write_wav(tmp_path / "m-tx.wav", 0.2),
    )
    with pytest.raises(AudioCorrupt):
        await encode(inputs, CUSTOMER_ON_RX, tmp_path, OPTIONS)


async def test_mix_and_halves_write_ogg_sides_with_rx_audio_on_the_customer(tmp_path: Path) -> None:
    inputs = AudioInputs(
        mix=write_wav(tmp_path / "m.wav", 0.5),
        rx=write_wav(tmp_path / "m-rx.wav", 0.5),
        tx=write_silence(tmp_path / "m-tx.wav", 0.5),
    )
    out = tmp_path / "out"
    out.mkdir()
    encoded = await encode(inputs, CUSTOMER_ON_RX, out, OPTIONS)
    assert set(encoded.outputs) == {"mix", "customer", "manager"}
    for path in encoded.outputs.values():
        assert path.parent == out
        assert path.read_bytes().startswith(b"OggS")
    assert decoded_peak_dbfs(encoded.outputs["customer"]) == pytest.approx(TONE_DBFS, abs=1.5)
    assert decoded_peak_dbfs(encoded.outputs["manager"]) < QUIET_DBFS
    assert encoded.duration_seconds == pytest.approx(0.5, abs=1e-3)


async def test_rx_audio_goes_to_the_manager_when_rx_is_the_manager(tmp_path: Path) -> None:
    inputs = AudioInputs(
        mix=write_wav(tmp_path / "m.wav", 0.5),
        rx=write_wav(tmp_path / "m-rx.wav", 0.5),
        tx=write_silence(tmp_path / "m-tx.wav", 0.5),
    )
    encoded = await encode(inputs, MANAGER_ON_RX, tmp_path, OPTIONS)
    assert decoded_peak_dbfs(encoded.outputs["manager"]) == pytest.approx(TONE_DBFS, abs=1.5)
    assert decoded_peak_dbfs(encoded.outputs["customer"]) < QUIET_DBFS


async def test_halves_without_mix_are_mixed_for_the_longest_half(tmp_path: Path) -> None:
    inputs = AudioInputs(
        rx=write_wav(tmp_path / "m-rx.wav", 0.5),
        tx=write_silence(tmp_path / "m-tx.wav", 0.25),
    )
    encoded = await encode(inputs, CUSTOMER_ON_RX, tmp_path, OPTIONS)
    assert encoded.duration_seconds == pytest.approx(0.5, abs=1e-3)
    assert encoded.peak_dbfs == pytest.approx(TONE_DBFS, abs=0.1)
    assert decoded_peak_dbfs(encoded.outputs["customer"]) == pytest.approx(TONE_DBFS, abs=1.5)
    assert decoded_peak_dbfs(encoded.outputs["manager"]) < QUIET_DBFS


async def test_stereo_raw_splits_left_to_rx_and_right_to_tx(tmp_path: Path) -> None:
    raw = write_stereo_raw(tmp_path / "m.raw", left=tone(0.5), right=silence(0.5))
    encoded = await encode(AudioInputs(mix=raw, raw_rate=8000), CUSTOMER_ON_RX, tmp_path, OPTIONS)
    assert set(encoded.outputs) == {"mix", "customer", "manager"}
    assert all(path.read_bytes().startswith(b"OggS") for path in encoded.outputs.values())
    assert encoded.duration_seconds == pytest.approx(0.5, abs=1e-3)
    assert decoded_peak_dbfs(encoded.outputs["customer"]) == pytest.approx(TONE_DBFS, abs=1.5)
    assert decoded_peak_dbfs(encoded.outputs["manager"]) < QUIET_DBFS


async def test_stereo_raw_right_channel_goes_to_tx(tmp_path: Path) -> None:
    raw = write_stereo_raw(tmp_path / "m.raw", left=silence(0.5), right=tone(0.5))
    encoded = await encode(AudioInputs(mix=raw, raw_rate=8000), CUSTOMER_ON_RX, tmp_path, OPTIONS)
    assert decoded_peak_dbfs(encoded.outputs["manager"]) == pytest.approx(TONE_DBFS, abs=1.5)
    assert decoded_peak_dbfs(encoded.outputs["customer"]) < QUIET_DBFS


async def test_stereo_raw_at_16k_measures_its_real_length(tmp_path: Path) -> None:
    raw = write_stereo_raw(tmp_path / "m.sln16", left=tone(0.5, rate=16000), right=silence(0.5, rate=16000))
    encoded = await encode(AudioInputs(mix=raw, raw_rate=16000), CUSTOMER_ON_RX, tmp_path, OPTIONS)
    assert encoded.duration_seconds == pytest.approx(0.5, abs=1e-2)


# wav_is_truncated


def test_complete_wav_is_not_truncated(tmp_path: Path) -> None:
    assert not wav_is_truncated(write_wav(tmp_path / "a.wav", 0.2))


def test_wav_shorter_than_its_header_claims_is_truncated(tmp_path: Path) -> None:
    assert wav_is_truncated(write_truncated(tmp_path / "a.wav", seconds=1.0, kept_seconds=0.5))


def test_wav_with_no_data_after_a_header_claiming_some_is_truncated(tmp_path: Path) -> None:
    assert wav_is_truncated(write_truncated(tmp_path / "a.wav", seconds=1.0, kept_seconds=0))


def test_unfinalised_data_size_with_audio_following_is_truncated(tmp_path: Path) -> None:
    assert wav_is_truncated(write_unfinalised(tmp_path / "a.wav", 0.2))


def test_header_only_wav_is_not_truncated(tmp_path: Path) -> None:
    assert not wav_is_truncated(write_header_only(tmp_path / "a.wav"))


@pytest.mark.parametrize("content", [b"", b"RIFF", b"OggS" + bytes(60), b"this is not audio" * 10])
def test_non_wav_is_not_truncated(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "a.wav"
    path.write_bytes(content)
    assert not wav_is_truncated(path)


def test_garbage_is_not_truncated(tmp_path: Path) -> None:
    assert not wav_is_truncated(write_garbage(tmp_path / "a.wav"))


# probe


def test_probe_of_wav_is_pcm_s16le(tmp_path: Path) -> None:
    stream = probe(write_wav(tmp_path / "a.wav", 0.2))
    assert stream["codec_name"] == "pcm_s16le"
    assert stream["codec_type"] == "audio"
    assert int(stream["sample_rate"]) == 8000


def test_probe_of_garbage_is_corrupt(tmp_path: Path) -> None:
    with pytest.raises(AudioCorrupt):
        probe(write_garbage(tmp_path / "a.wav"))


def test_probe_of_wav_cut_inside_its_header_is_corrupt(tmp_path: Path) -> None:
    with pytest.raises(AudioCorrupt):
        probe(write_cut_header(tmp_path / "a.wav", 20))


# measurement


def test_measurement_reads_the_last_volumedetect_report() -> None:
    log_text = (
        "[Parsed_volumedetect_3 @ 0x1] n_samples: 0\n"
        "[Parsed_volumedetect_3 @ 0x2] n_samples: 16000\n"
        "[Parsed_volumedetect_3 @ 0x2] mean_volume: -20.1 dB\n"
        "[Parsed_volumedetect_3 @ 0x2] max_volume: -6.5 dB\n"
        "[Parsed_volumedetect_3 @ 0x2] histogram_6db: 12\n"
    )
    assert measurement(log_text) == (16000, -6.5)


@pytest.mark.parametrize(
    "log_text",
    [
        "",
        "[Parsed_volumedetect_3 @ 0x1] n_samples: 0\n",
        "[Parsed_volumedetect_0 @ 0x1] n_samples: 800\n[Parsed_volumedetect_0 @ 0x1] max_volume: -91.0 dB\n",
    ],
)
def test_measurement_of_nothing_or_digital_silence_has_no_peak(log_text: str) -> None:
    assert measurement(log_text)[1] == -math.inf


def test_mp3_command_uses_lame_without_the_opus_effort_option(tmp_path: Path) -> None:
    options = EncodeOptions(bitrate=32_000, complexity=5, audio_format=MP3)
    args, outputs = encode_command(AudioInputs(mix=tmp_path / "m.wav"), CUSTOMER_ON_RX, tmp_path, options)
    assert outputs == {"mix": tmp_path / "mix.mp3"}
    mix_output = _maps_of(args)[0]
    assert mix_output[:3] == ["[mix]", "-c:a", "libmp3lame"]
    assert "-compression_level" not in mix_output
    assert mix_output[mix_output.index("-f") + 1] == "mp3"
