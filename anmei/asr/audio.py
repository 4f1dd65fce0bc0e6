"""Decode stored voice (wav, mp3, ogg/opus, m4a, amr through ffmpeg; SILK through pysilk) to 16 kHz mono.

Every backend receives the same float32 samples in [-1, 1]; undecodable input raises BadAudio.
"""

from __future__ import annotations

import io
import os
import resource
import subprocess
import tempfile
import threading

import numpy as np
from django.conf import settings

SAMPLE_RATE = 16000
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 48000
SILK_FRAME_SECONDS = 0.02  # a SILK packet carries at least one 20 ms frame


class BadAudio(Exception):  # noqa: N818 - a domain outcome, mapped to ASR_BAD_AUDIO
    """The bytes cannot be decoded as audio (corrupt, truncated, too long, silent nothing).

    `message` is a fixed sentence that may be shown to the tenant; `detail` (decoder output,
    header values) is for our logs only.
    """

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


def _max_seconds() -> float:
    return float(settings.ASR_MAX_DURATION_SECONDS)


def _max_pcm_bytes() -> int:
    """The most 16 kHz mono s16 output any decoder may produce (the longest allowed voice)."""
    return int(_max_seconds() * SAMPLE_RATE) * 2


def _check_header(*, seconds: float | None, rate: int | None) -> None:
    """Refuse what the header declares before a single sample is decoded.

    Decoding resamples to 16 kHz, so the output grows with declared duration, not with the
    upload's size: a few bytes declaring 1 Hz (or hours) would otherwise decode to gigabytes.
    """
    if rate is not None and not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise BadAudio("the audio's sample rate is outside 8-48 kHz", f"sample rate {rate}")
    if seconds is not None and seconds > _max_seconds():
        raise BadAudio(f"the audio is longer than {int(_max_seconds())} seconds", f"declared duration {seconds:.1f} s")


class _CappedBuffer(io.BytesIO):
    """An output that refuses to grow past `cap` bytes (the SILK decoder writes frame by frame)."""

    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap

    def write(self, data) -> int:
        if self.tell() + len(data) > self.cap:
            raise BadAudio(f"the audio is longer than {int(_max_seconds())} seconds", "SILK output over the cap")
        return super().write(data)


def _silk_packets(data: bytes) -> int | None:
    """Count the packets of a SILK v3 stream (2-byte little-endian length, then the payload)."""
    body = data[1:] if data.startswith(b"\x02") else data
    if not body.startswith(b"#!SILK_V3"):
        return None
    offset, packets = len(b"#!SILK_V3"), 0
    while offset + 2 <= len(body):
        size = int.from_bytes(body[offset : offset + 2], "little")
        if size == 0xFFFF:  # end-of-stream marker some encoders write
            break
        offset += 2 + size
        packets += 1
    return packets


def _silk_to_pcm(data: bytes) -> bytes:
    import pysilk

    packets = _silk_packets(data)
    if packets is None:
        raise BadAudio("the audio could not be decoded", "no SILK v3 header")
    _check_header(seconds=packets * SILK_FRAME_SECONDS, rate=None)
    out = _CappedBuffer(_max_pcm_bytes())  # a packet may carry up to five frames: cap the output too
    try:
        pysilk.decode(io.BytesIO(data), out, SAMPLE_RATE)
    except BadAudio:
        raise
    except Exception as exc:  # noqa: BLE001 - the decoder raises its own error types
        raise BadAudio("the audio could not be decoded", f"SILK decode failed: {exc}") from exc
    return out.getvalue()


def _probe(data: bytes) -> tuple[float | None, int | None]:
    """Duration and sample rate from the container's header (PyAV reads headers, decodes nothing).

    (None, None) when PyAV cannot read it: ffmpeg then decides, under the same caps.
    """
    import av

    try:
        with av.open(io.BytesIO(data)) as container:
            if not container.streams.audio:
                raise BadAudio("the audio could not be decoded", "no audio stream")
            stream = container.streams.audio[0]
            seconds = None
            if stream.duration and stream.time_base:
                seconds = float(stream.duration * stream.time_base)
            elif container.duration:
                seconds = container.duration / av.time_base
            return seconds, stream.codec_context.sample_rate or None
    except av.FFmpegError:
        return None, None


def _decoder_limits() -> None:
    """In the ffmpeg child before exec: a cap on its address space (a crafted file cannot OOM the worker)."""
    limit = settings.ASR_DECODE_MEMORY_LIMIT_MB * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _ffmpeg_to_pcm(data: bytes) -> bytes:
    """Decode through an ffmpeg child: at most the longest allowed voice (plus a second), read capped.

    `-t` stops the output at that duration and `-fs` at that size; the reader stops one byte past
    the cap as well, and the child runs under ASR_DECODE_MEMORY_LIMIT_MB of address space and
    ASR_DECODE_TIMEOUT_SECONDS (subprocess.TimeoutExpired, a retryable outcome).
    """
    seconds, rate = _probe(data)
    _check_header(seconds=seconds, rate=rate)
    cap = _max_pcm_bytes() + SAMPLE_RATE * 2
    # A temporary file, not a pipe: m4a keeps its index at the end and needs a seekable input.
    with tempfile.NamedTemporaryFile(prefix="anmei-asr-", delete=False) as fh:
        fh.write(data)
        path = fh.name
    args = [
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-xerror",
        "-i",
        path,
        "-t",
        str(_max_seconds() + 1),
        "-fs",
        str(cap),
        "-f",
        "s16le",
        "-acodec",
        "pcm_s16le",
        "-ac",
        "1",
        "-ar",
        str(SAMPLE_RATE),
        "pipe:1",
    ]
    timed_out = threading.Event()
    try:
        with tempfile.TemporaryFile() as stderr:
            try:
                proc = subprocess.Popen(  # noqa: S603 - fixed arguments, no shell
                    args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, preexec_fn=_decoder_limits
                )
            except FileNotFoundError as exc:  # the ffmpeg binary is missing: an installation fault
                raise RuntimeError("ffmpeg is not installed") from exc

            def expire() -> None:
                timed_out.set()
                proc.kill()

            timer = threading.Timer(settings.ASR_DECODE_TIMEOUT_SECONDS, expire)
            timer.start()
            try:
                with proc.stdout:
                    pcm = proc.stdout.read(cap + 1)
                    if len(pcm) > cap:
                        proc.kill()
                returncode = proc.wait()
            finally:
                timer.cancel()
            stderr.seek(0)
            errors = stderr.read()[-300:].decode(errors="replace").strip()
    finally:
        os.unlink(path)
    if timed_out.is_set():
        raise subprocess.TimeoutExpired(args[0], settings.ASR_DECODE_TIMEOUT_SECONDS)
    if len(pcm) > _max_pcm_bytes():
        raise BadAudio(f"the audio is longer than {int(_max_seconds())} seconds", "ffmpeg output over the cap")
    if returncode != 0:
        raise BadAudio("the audio could not be decoded", f"ffmpeg exit {returncode}: {errors}")
    return pcm


def _wav_to_pcm(data: bytes) -> bytes | None:
    """16-bit PCM WAV in-process: stdlib parsing plus PyAV's swresample (ffmpeg's own resampler).

    Returns None for any other WAV flavour (float, ADPCM, 8/24-bit), which ffmpeg then decodes.
    The header's rate and frame count are checked before any frame is read.
    bench/asr.py: ~3-40 ms for a 10 s clip against ~170-400 ms for an ffmpeg process on this
    machine, the largest part of the pipeline's overhead; the samples match ffmpeg's within 1e-4.
    """
    import wave

    import av

    try:
        with wave.open(io.BytesIO(data)) as wav:
            rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
            _check_header(seconds=wav.getnframes() / rate if rate else None, rate=rate)
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

    Voice longer than ASR_MAX_DURATION_SECONDS or at a sample rate outside 8-48 kHz is refused
    from its header, before decoding (BadAudio). `fast_wav=False` sends WAV through ffmpeg too
    (the tests compare both paths).
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
