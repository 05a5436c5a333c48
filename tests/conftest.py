"""Shared fixtures: synthetic speech from espeak-ng, the shipped model, a loaded pipeline."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from recipes import corpus
from worker.settings import Settings, load_settings

RATE = corpus.SAMPLE_RATE_HZ


@pytest.fixture(scope="session")
def espeak() -> None:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is required to synthesise test speech: apt-get install espeak-ng")


@pytest.fixture(scope="session")
def held_out_pair(espeak):
    """Unseen voice, unseen noise kind, 5 dB SNR."""
    return corpus.held_out_pair(11, voice="en-us+m6", noise_kind="street", snr_db=5.0, seconds=4.0)


@pytest.fixture(scope="session")
def speech(espeak) -> np.ndarray:
    """Six seconds of clean held-out speech over a faint noise floor, as any microphone has."""
    rng = np.random.default_rng(3)
    clean = corpus.speech_clip(rng, "en-gb-scotland+m7", 6.0)
    return corpus.mix_at_snr(clean, corpus.noise(rng, "pink", len(clean)), 45.0)


@pytest.fixture(scope="session")
def default_config() -> Settings:
    return load_settings(environ={})


@pytest.fixture(scope="session")
def loaded_enhancer(default_config):
    from enhancement.model import MetricGanEnhancer

    enhancer = MetricGanEnhancer(default_config.model.source, device="cpu")
    enhancer.load()
    return enhancer


@pytest.fixture
def pipeline(default_config, loaded_enhancer):
    from enhancement.pipeline import Pipeline

    pipe = Pipeline(default_config, loaded_enhancer)
    yield pipe
    pipe.close()
