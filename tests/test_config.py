from pathlib import Path

import pytest

from enhancement.config import SHIPPED_MODEL_DIR
from enhancement.errors import ConfigError
from worker.settings import load_settings


def test_defaults_work_without_a_file():
    config = load_settings(environ={})
    assert config.model.source == SHIPPED_MODEL_DIR
    assert config.loudness.gain_ratio == 1.6
    assert config.model.breaker.failure_threshold == 5
    assert config.model.breaker.recovery_timeout_seconds == 300
    assert config.model.breaker.half_open_successes == 3


def test_file_then_environment_override(tmp_path: Path):
    path = tmp_path / "worker.yaml"
    path.write_text("loudness:\n  gain_ratio: 1.4\nmodel:\n  device: cpu\n")
    config = load_settings(path, environ={"ENHANCEMENT_LOUDNESS__GAIN_RATIO": "1.2"})
    assert config.loudness.gain_ratio == 1.2
    assert config.model.device == "cpu"


def test_bad_values_are_named_in_one_clear_error(tmp_path: Path):
    path = tmp_path / "worker.yaml"
    path.write_text("loudness:\n  ceiling_dbtp: 3\nmodel:\n  device: tpu\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    message = str(caught.value)
    assert "loudness.ceiling_dbtp" in message and "model.device" in message
    assert isinstance(caught.value, ValueError)


def test_unknown_setting_is_refused():
    with pytest.raises(ConfigError, match="audio.max_seconds"):
        load_settings(environ={"ENHANCEMENT_AUDIO__MAX_SECONDS": "3"})


def test_inconsistent_limits_are_refused():
    with pytest.raises(ConfigError, match="min_duration_seconds"):
        load_settings(environ={"ENHANCEMENT_AUDIO__MIN_DURATION_SECONDS": "700"})


def test_unreadable_or_malformed_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml", environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("loudness: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad, environ={})
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(scalar, environ={})
