"""Speech-to-text pieces without a database: worker start-up, decoding, confidence."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from anmei.asr.audio import BadAudio, decode_to_16k_mono
from anmei.asr.backends import _confidence

ROOT = Path(__file__).resolve().parent.parent


def test_a_fresh_worker_process_loads_the_celery_app_with_the_asr_task():
    # `celery -A celery_config worker` imports the app module first; Django's setup inside it must
    # not import anything that needs the half-built app (it once made every worker fail to start).
    code = (
        "import celery_config; celery_config.app.loader.import_default_modules(); "
        "print(celery_config.app.tasks['workers.asr.transcribe'].name)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "workers.asr.transcribe"


@pytest.mark.parametrize("ext", ["wav", "silk"])
def test_wav_and_silk_decode_to_the_same_16k_mono_speech(ext, speech_wav, speech_silk):
    samples = decode_to_16k_mono(speech_wav if ext == "wav" else speech_silk, ext=ext)

    assert samples.dtype.name == "float32" and abs(len(samples) / 16000 - 4.37) < 0.02
    assert 0.05 < float(abs(samples).max()) <= 1.0


@pytest.mark.parametrize(("rate", "channels"), [(22050, 1), (16000, 1), (44100, 2), (8000, 1)])
def test_the_in_process_wav_path_matches_ffmpeg(rate, channels, speech_wav, tmp_path):
    # given the speech re-encoded by ffmpeg at other rates and channel counts (16-bit PCM WAV)
    path = tmp_path / "in.wav"
    path.write_bytes(speech_wav)
    out = tmp_path / f"{rate}-{channels}.wav"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", str(path), "-ar", str(rate), "-ac", str(channels), str(out)], check=True
    )
    wav = out.read_bytes()

    # when both paths decode it, then they agree sample for sample (same resampler library)
    fast, slow = decode_to_16k_mono(wav, ext="wav"), decode_to_16k_mono(wav, ext="wav", fast_wav=False)
    assert abs(len(fast) - len(slow)) <= 16
    n = min(len(fast), len(slow))
    assert float(abs(fast[:n] - slow[:n]).max()) < 2e-3


def test_a_wav_the_fast_path_cannot_read_goes_to_ffmpeg(speech_wav, tmp_path):
    path = tmp_path / "in.wav"
    path.write_bytes(speech_wav)
    out = tmp_path / "float.wav"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(path), "-c:a", "pcm_f32le", str(out)], check=True)

    samples = decode_to_16k_mono(out.read_bytes(), ext="wav")

    assert abs(len(samples) / 16000 - 4.37) < 0.02


def test_bytes_that_are_not_audio_raise_bad_audio():
    with pytest.raises(BadAudio):
        decode_to_16k_mono(b"#!AMR\n" + b"\x7c" * 200, ext="amr")
    with pytest.raises(BadAudio):
        decode_to_16k_mono(b"#!SILK_V3" + b"\x00" * 40, ext="silk")


def test_confidence_is_the_exponential_of_the_token_weighted_mean_log_probability():
    assert _confidence([(-0.2, 10), (-1.0, 30)]) == round(math.exp((-0.2 * 10 - 1.0 * 30) / 40), 4)
    assert _confidence([]) is None
