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


def _wav_to_pcm(data: bytes) -> bytes | None:
    """16-bit PCM WAV in-process: stdlib parsing plus PyAV's swresample (ffmpeg's own resampler).

    Returns None for any other WAV flavour (float, ADPCM, 8/24-bit), which ffmpeg then decodes.
    bench/asr.py: ~3-40 ms for a 10 s clip against ~170-400 ms for an ffmpeg process on this
    machine, the largest part of the pipeline's overhead; the samples match ffmpeg's within 1e-4.
    """
    import wave

    import av

    try:
        with wave.open(io.BytesIO(data)) as wav:
            rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError):
        return None
    if width != 2 or channels not in (1, 2) or not frames:
        return None
    interleaved = np.frombuffer(frames[: len(frames) // (2 * channels) * 2 * channels], dtype="<i2")
    if rate == SAMPLE_RATE and channels == 1:
        return interleaved.tobytes()
    frame = av.AudioFrame.from_ndarray(
        interleaved.reshape(1, -1), format="s16", layout="mono" if channels == 1 else "stereo"
    )
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    chunks = [f.to_ndarray().reshape(-1) for f in [*resampler.resample(frame), *resampler.resample(None)]]
    return np.concatenate(chunks).astype("<i2").tobytes() if chunks else b""


def decode_to_16k_mono(data: bytes, *, ext: str, fast_wav: bool = True) -> np.ndarray:
    """Return float32 mono samples at 16 kHz; raise BadAudio when nothing decodable is there.

    `fast_wav=False` sends WAV through ffmpeg too (the tests compare both paths).
    """
    pcm = None
    if ext == "silk":
        pcm = _silk_to_pcm(data)
    elif ext == "wav" and fast_wav:
        pcm = _wav_to_pcm(data)
    if pcm is None:
        pcm = _ffmpeg_to_pcm(data)
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


def pcm_to_ogg_opus(samples: np.ndarray) -> bytes:
    """Ogg/Opus of float samples at 16 kHz: the rendition a browser's `<audio>` plays for AMR/SILK voice.

    Opus is the codec made for speech at low bitrates (24 kbit/s here, ~3 KB per second of voice)
    and Chromium, Firefox and Safari 17+ play it in an Ogg container natively; MP3 would be larger
    and WAV ten times larger for the same voice. Encoded in-process with PyAV's libopus at
    complexity 1: the rendition is made before `asr.result` is pushed (the event links it), on a
    thread beside the model. For a 10 s clip an ffmpeg process took ~150-200 ms of that wait;
    libopus in-process takes 70 ms at its default complexity 10 and 22 ms at 1 (same size within
    1 %), and at 1 the model beside it is slowed by ~10 ms instead of ~30 ms (voice, 24 kbit/s,
    this 2-core machine; the encoder holds the GIL part of the time).
    """
    import av

    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").reshape(1, -1)
    out = io.BytesIO()
    with av.open(out, "w", format="ogg") as container:
        stream = container.add_stream(
            "libopus", rate=SAMPLE_RATE, options={"application": "voip", "compression_level": "1"}
        )
        stream.bit_rate = 24000
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    data = out.getvalue()
    if not data.startswith(b"OggS"):
        raise RuntimeError("libopus produced no Ogg stream")
    return data
