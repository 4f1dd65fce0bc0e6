"""Voice is judged from its header before decoding: no decompression bomb reaches the ASR worker.

API.md "Hardening promises": longer than ASR_MAX_DURATION_SECONDS, or a sample rate outside
8-48 kHz, fails at once with ASR_BAD_AUDIO; ffmpeg decodes with `-t`, a capped read and under a
memory limit; SILK output is capped.
"""

from __future__ import annotations

import io
import subprocess
import wave

import pytest

from anmei.asr.audio import BadAudio, decode_to_16k_mono
from anmei.asr.models import AsrTask
from anmei.jobs.models import Job
from tests.fixtures_asr import voice_post
from tests.fixtures_bots import make_bot
from tests.helpers import poll


def _wav(rate: int, frames: bytes) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return buffer.getvalue()


def _ffmpeg(wav: bytes, tmp_path, suffix: str, *args: str) -> bytes:
    source, target = tmp_path / "in.wav", tmp_path / f"out.{suffix}"
    source.write_bytes(wav)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(source), *args, str(target)], check=True)
    return target.read_bytes()


# 444 bytes declaring 1 Hz: 200 "seconds" that the old path resampled to 3.2 million samples.
BOMB = _wav(1, b"\x00\x01" * 200)


@pytest.mark.parametrize("fast_wav", [True, False])
def test_a_wav_declaring_1_hz_is_refused_before_decoding(fast_wav):
    assert len(BOMB) == 444
    with pytest.raises(BadAudio) as refused:
        decode_to_16k_mono(BOMB, ext="wav", fast_wav=fast_wav)
    assert refused.value.message == "the audio's sample rate is outside 8-48 kHz"


@pytest.mark.parametrize("rate", [7999, 48001, 96000])
def test_sample_rates_outside_8_to_48_khz_are_refused(rate):
    with pytest.raises(BadAudio):
        decode_to_16k_mono(_wav(rate, b"\x00\x01" * rate), ext="wav")


@pytest.mark.parametrize("rate", [8000, 48000])
def test_the_edges_of_the_allowed_rates_decode(rate):
    samples = decode_to_16k_mono(_wav(rate, b"\x00\x01" * rate), ext="wav")
    assert abs(len(samples) - 16000) <= 32


def test_a_wav_longer_than_the_limit_is_refused_from_its_header(settings, speech_wav):
    settings.ASR_MAX_DURATION_SECONDS = 4
    with pytest.raises(BadAudio) as refused:
        decode_to_16k_mono(speech_wav, ext="wav")  # 4.37 s
    assert refused.value.message == "the audio is longer than 4 seconds"

    settings.ASR_MAX_DURATION_SECONDS = 5
    assert abs(len(decode_to_16k_mono(speech_wav, ext="wav")) / 16000 - 4.37) < 0.02


def test_a_long_mp3_is_refused_from_its_header_before_ffmpeg_decodes_it(settings, speech_wav, tmp_path):
    mp3 = _ffmpeg(speech_wav, tmp_path, "mp3")
    settings.ASR_MAX_DURATION_SECONDS = 3
    with pytest.raises(BadAudio) as refused:
        decode_to_16k_mono(mp3, ext="mp3")
    assert refused.value.message == "the audio is longer than 3 seconds"


def test_a_long_silk_is_refused_from_its_packet_count(settings, speech_silk):
    settings.ASR_MAX_DURATION_SECONDS = 3
    with pytest.raises(BadAudio) as refused:
        decode_to_16k_mono(speech_silk, ext="silk")
    assert refused.value.message == "the audio is longer than 3 seconds"


def test_ffmpeg_decodes_under_the_memory_limit(settings, speech_wav, tmp_path):
    mp3 = _ffmpeg(speech_wav, tmp_path, "mp3")
    assert abs(len(decode_to_16k_mono(mp3, ext="mp3")) / 16000 - 4.4) < 0.1

    # with an address space too small for ffmpeg to map its libraries, the child cannot run at all
    settings.ASR_DECODE_MEMORY_LIMIT_MB = 32
    with pytest.raises(BadAudio) as refused:
        decode_to_16k_mono(mp3, ext="mp3")
    assert refused.value.message == "the audio could not be decoded"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast_hashing")
def test_a_voice_bomb_fails_at_once_with_asr_bad_audio_and_no_retry(celery_worker, asr_api, tenant_a):
    _, token, _ = make_bot(tenant_a, callback_url="http://127.0.0.1:9/alpha")
    response = voice_post(token, BOMB, name="bomb.wav")
    assert response.status_code == 202, response.content

    task = poll(
        lambda: AsrTask.objects.filter(asr_task_id=response.json()["asr_task_id"], status="failed").first(), timeout=30
    )
    assert task is not None
    assert (task.attempts, task.error_code) == (1, "ASR_BAD_AUDIO")
    assert poll(lambda: Job.objects.filter(kind="asr", state="failed", attempts=1).exists())
    assert asr_api.requests == []  # nothing was decoded, so nothing was sent to be transcribed
