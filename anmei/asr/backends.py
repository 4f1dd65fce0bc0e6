"""Transcription backends behind one interface, loaded once per worker process.

`asr_backend()` builds the configured backend on first use and keeps it for the life of the process
(the model stays in memory between tasks). Errors come out as AsrError with a code and whether a
retry can help: an unreachable server retries, a model that cannot be had fails at once.

Confidence: exp of the mean token log-probability the model itself reports — Whisper's per-segment
`avg_logprob`, weighted by each segment's token count (or its duration where tokens are absent).
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from django.conf import settings

from anmei.asr.audio import SAMPLE_RATE, pcm_to_wav

logger = logging.getLogger("anmei.asr")


class AsrError(Exception):
    """A transcription failure with an API.md error code (ASR_*); `transient` says whether a retry can help."""

    def __init__(self, code: str, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.transient = transient


@dataclass(frozen=True)
class Transcript:
    text: str
    confidence: float | None
    language: str
    duration: float


class Backend(Protocol):
    name: str
    model_name: str

    def transcribe(self, samples: np.ndarray, *, language: str | None) -> Transcript: ...


def _confidence(pairs: list[tuple[float, float]]) -> float | None:
    """exp(weighted mean log-probability) from (avg_logprob, weight) pairs, rounded; None when empty."""
    total = sum(weight for _, weight in pairs)
    if not pairs or total <= 0:
        return None
    mean = sum(logprob * weight for logprob, weight in pairs) / total
    return round(min(1.0, max(0.0, math.exp(mean))), 4)


def _cuda_wanted(available: bool) -> bool:
    if settings.ASR_DEVICE == "cuda" and not available:
        raise AsrError("ASR_DEVICE_UNAVAILABLE", "ASR_DEVICE=cuda but no CUDA device is visible", transient=False)
    return settings.ASR_DEVICE == "cuda" or (settings.ASR_DEVICE == "auto" and available)


class WhisperBackend:
    """openai-whisper (PyTorch). ASR_MODEL: a model name (downloaded once) or a checkpoint path."""

    name = "whisper"

    def __init__(self, model_name: str) -> None:
        import torch
        import whisper

        self.model_name = model_name or "base"
        self.device = "cuda" if _cuda_wanted(torch.cuda.is_available()) else "cpu"
        if settings.ASR_CPU_THREADS:
            torch.set_num_threads(settings.ASR_CPU_THREADS)
        try:
            self.model = whisper.load_model(self.model_name, device=self.device)
        except Exception as exc:  # noqa: BLE001 - unknown name, missing file, no network for the download
            raise AsrError(
                "ASR_MODEL_UNAVAILABLE", f"whisper model '{self.model_name}' cannot be loaded: {exc}", transient=False
            ) from exc
        self._lock = threading.Lock()  # one model, one transcription at a time (thread pools)

    def transcribe(self, samples: np.ndarray, *, language: str | None) -> Transcript:
        with self._lock:
            result = self.model.transcribe(
                samples,
                language=language or None,
                fp16=self.device == "cuda",
                temperature=0.0,
                beam_size=None,
                condition_on_previous_text=False,
                verbose=None,
            )
        segments = result.get("segments") or []
        pairs = [(float(s["avg_logprob"]), float(len(s.get("tokens") or []) or 1)) for s in segments]
        return Transcript(
            text=str(result.get("text") or "").strip(),
            confidence=_confidence(pairs),
            language=str(result.get("language") or language or ""),
            duration=round(len(samples) / SAMPLE_RATE, 2),
        )


class FasterWhisperBackend:
    """faster-whisper (CTranslate2): int8 on CPU, float16 on CUDA. ASR_MODEL: a name or a model directory."""

    name = "faster-whisper"

    def __init__(self, model_name: str) -> None:
        import ctranslate2
        from faster_whisper import WhisperModel

        self.model_name = model_name or "small"
        cuda = _cuda_wanted(ctranslate2.get_cuda_device_count() > 0)
        try:
            self.model = WhisperModel(
                self.model_name,
                device="cuda" if cuda else "cpu",
                compute_type="float16" if cuda else "int8",
                cpu_threads=settings.ASR_CPU_THREADS,
            )
        except Exception as exc:  # noqa: BLE001 - missing directory, no network for the download
            raise AsrError(
                "ASR_MODEL_UNAVAILABLE",
                f"faster-whisper model '{self.model_name}' cannot be loaded: {exc}",
                transient=False,
            ) from exc
        self._lock = threading.Lock()

    def transcribe(self, samples: np.ndarray, *, language: str | None) -> Transcript:
        with self._lock:
            segments, info = self.model.transcribe(
                samples, language=language or None, beam_size=settings.ASR_BEAM_SIZE, condition_on_previous_text=False
            )
            segments = list(segments)  # a generator: the decoding happens here
        pairs = [(float(s.avg_logprob), float(len(s.tokens) or 1)) for s in segments]
        return Transcript(
            text="".join(s.text for s in segments).strip(),
            confidence=_confidence(pairs),
            language=str(info.language or language or ""),
            duration=round(float(info.duration), 2),
        )


class OpenAIApiBackend:
    """Any server speaking OpenAI's `POST /v1/audio/transcriptions` (FunASR/SenseVoice, faster-whisper-server)."""

    name = "openai-api"

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name or "whisper-1"

    def transcribe(self, samples: np.ndarray, *, language: str | None) -> Transcript:
        import requests

        data = {"model": self.model_name, "response_format": "verbose_json"}
        if language:
            data["language"] = language
        headers = {"Authorization": f"Bearer {settings.ASR_API_KEY}"} if settings.ASR_API_KEY else {}
        try:
            response = requests.post(
                settings.ASR_API_BASE_URL.rstrip("/") + "/v1/audio/transcriptions",
                data=data,
                files={"file": ("audio.wav", pcm_to_wav(samples), "audio/wav")},
                headers=headers,
                timeout=settings.ASR_API_TIMEOUT_SECONDS,
            )
        except requests.Timeout as exc:
            raise AsrError("ASR_TIMEOUT", "the transcription server did not answer in time", transient=True) from exc
        except requests.RequestException as exc:
            raise AsrError(
                "ASR_BACKEND_UNAVAILABLE", f"transcription server unreachable: {type(exc).__name__}", transient=True
            ) from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise AsrError("ASR_BACKEND_ERROR", f"transcription server answered {response.status_code}", transient=True)
        if response.status_code >= 400:
            raise AsrError(
                "ASR_BACKEND_ERROR",
                f"transcription server refused the audio ({response.status_code}): {response.text[:200]}",
                transient=False,
            )
        try:
            body: dict[str, Any] = response.json()
        except ValueError as exc:
            raise AsrError("ASR_BACKEND_ERROR", "transcription server sent no JSON", transient=True) from exc
        segments = body.get("segments") or []
        pairs = [
            (
                float(s["avg_logprob"]),
                float(len(s.get("tokens") or []) or max(float(s["end"]) - float(s["start"]), 0.01)),
            )
            for s in segments
            if isinstance(s, dict) and s.get("avg_logprob") is not None and "start" in s and "end" in s
        ]
        return Transcript(
            text=str(body.get("text") or "").strip(),
            confidence=_confidence(pairs),
            language=str(body.get("language") or language or ""),
            duration=round(float(body.get("duration") or len(samples) / SAMPLE_RATE), 2),
        )


_BACKENDS = {"whisper": WhisperBackend, "faster-whisper": FasterWhisperBackend, "openai-api": OpenAIApiBackend}
_load_lock = threading.Lock()
load_count = 0  # models built by this process (the bench and tests read it: loaded once, reused)


@functools.lru_cache(maxsize=4)
def _build(name: str, model: str, device: str) -> Backend:  # noqa: ARG001 - device is part of the cache key
    global load_count
    started = time.perf_counter()
    backend = _BACKENDS[name](model)
    load_count += 1
    logger.info(
        "asr model loaded",
        extra={
            "backend": name,
            "model": backend.model_name,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    return backend


def asr_backend() -> Backend:
    """The configured backend, built once per process and per (backend, model, device) setting."""
    with _load_lock:  # two worker threads starting together load the model once
        return _build(settings.ASR_BACKEND, settings.ASR_MODEL, settings.ASR_DEVICE)
