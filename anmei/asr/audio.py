"""Decode stored voice (wav, mp3, ogg/opus, m4a, amr through ffmpeg; SILK through pysilk) to 16 kHz mono.

Every backend receives the same float32 samples in [-1, 1]; undecodable input raises BadAudio.
"""

from __future__ import annotations

import io
import os
import subprocess
import tempfile

import numpy as np
from django.conf import settings

SAMPLE_RATE = 16000


class BadAudio(Exception):  # noqa: N818 - a domain outcome, mapped to ASR_BAD_AUDIO
    """The bytes cannot be decoded as audio (corrupt, truncated, or silent nothing)."""


def _silk_to_pcm(data: bytes) -> bytes:
    import pysilk

    try:
        out = io.BytesIO()
        pysilk.decode(io.BytesIO(data), out, SAMPLE_RATE)
    except Exception as exc:  # noqa: BLE001 - the decoder raises its own error types
        raise BadAudio(f"SILK decode failed: {exc}") from exc
    return out.getvalue()


def _ffmpeg_to_pcm(data: bytes) -> bytes:
    # A temporary file, not a pipe: m4a keeps its index at the end and needs a seekable input.
    with tempfile.NamedTemporaryFile(prefix="anmei-asr-", delete=False) as fh:
        fh.write(data)
        path = fh.name
    try:
        proc = subprocess.run(
            [
                "ffmpeg",
                "-nostdin",
                "-hide_banner",
                "-loglevel",
                "error",
                "-xerror",
                "-i",
                path,
                "-f",
                "s16le",
                "-acodec",
                "pcm_s16le",
                "-ac",
                "1",
                "-ar",
                str(SAMPLE_RATE),
                "pipe:1",
            ],
            capture_output=True,
            timeout=settings.ASR_DECODE_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError as exc:  # the ffmpeg binary is missing: an installation fault, not bad audio
        raise RuntimeError("ffmpeg is not installed") from exc
    finally:
        os.unlink(path)
    if proc.returncode != 0:
        raise BadAudio(f"ffmpeg could not decode the audio: {proc.stderr.decode(errors='replace')[-300:].strip()}")
    return proc.stdout


def decode_to_16k_mono(data: bytes, *, ext: str) -> np.ndarray:
    """Return float32 mono samples at 16 kHz; raise BadAudio when nothing decodable is there."""
    pcm = _silk_to_pcm(data) if ext == "silk" else _ffmpeg_to_pcm(data)
    if len(pcm) < SAMPLE_RATE // 10 * 2:  # under 0.1 s of sound: nothing to transcribe
        raise BadAudio("the audio is empty")
    return np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype=np.int16).astype(np.float32) / 32768.0


def pcm_to_wav(samples: np.ndarray) -> bytes:
    """16-bit PCM WAV of float samples at 16 kHz (what an external transcription server is sent)."""
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes((np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()
