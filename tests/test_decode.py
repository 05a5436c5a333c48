import numpy as np
import pytest

from enhancement.config import AudioLimits
from enhancement.decode import MODEL_SAMPLE_RATE_HZ, decode_bytes, decode_file
from enhancement.errors import InvalidAudio
from helpers.audio_files import hostile_inputs, noise, wav_bytes

LIMITS = AudioLimits()


@pytest.mark.parametrize("name", sorted(hostile_inputs()))
def test_hostile_input_is_rejected_with_its_reason(name):
    data, reason = hostile_inputs()[name]
    with pytest.raises(InvalidAudio) as caught:
        decode_bytes(data, LIMITS)
    assert caught.value.reason == reason
    assert str(caught.value), "the message must say what is wrong"
    assert "0x" not in str(caught.value), "no object addresses in user-facing messages"


def test_over_long_clip_is_refused_from_the_header():
    limits = AudioLimits(max_duration_seconds=5.0)
    with pytest.raises(InvalidAudio, match="limit is 5 s") as caught:
        decode_bytes(wav_bytes(noise(6.0)), limits)
    assert caught.value.reason == "too_long"


def test_upload_over_the_byte_cap_is_refused():
    with pytest.raises(InvalidAudio) as caught:
        decode_bytes(wav_bytes(noise(2.0)), AudioLimits(max_input_bytes=1000))
    assert caught.value.reason == "too_large"


def test_stereo_44k1_is_mixed_down_and_resampled():
    rate = 44_100
    t = np.arange(int(1.5 * rate)) / rate
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t)
    stereo = np.stack([tone, tone], axis=1)
    decoded = decode_bytes(wav_bytes(stereo, rate=rate, subtype="FLOAT"), LIMITS)
    assert decoded.input_sample_rate_hz == rate and decoded.input_channels == 2
    assert len(decoded.samples) == int(1.5 * MODEL_SAMPLE_RATE_HZ)
    spectrum = np.abs(np.fft.rfft(decoded.samples[2000:-2000]))
    peak_hz = np.argmax(spectrum) * MODEL_SAMPLE_RATE_HZ / len(decoded.samples[2000:-2000])
    assert abs(peak_hz - 1000) < 5
    assert 0.49 < np.max(np.abs(decoded.samples[2000:-2000])) < 0.51


def test_antialiasing_removes_content_above_the_new_nyquist():
    rate = 48_000
    t = np.arange(rate) / rate
    decoded = decode_bytes(
        wav_bytes(0.5 * np.sin(2 * np.pi * 12_000 * t) + 0.1 * np.sin(2 * np.pi * 440 * t), rate=rate, subtype="FLOAT"), LIMITS
    )
    # 12 kHz would alias to 4 kHz at 16 kHz; a proper filter leaves only the 440 Hz tone.
    body = decoded.samples[1000:-1000]
    assert np.sqrt(np.mean(body**2)) == pytest.approx(0.1 / np.sqrt(2), rel=0.05)


@pytest.mark.parametrize("fmt,subtype", [("FLAC", "PCM_16"), ("OGG", "VORBIS")])
def test_flac_and_ogg_decode(fmt, subtype):
    decoded = decode_bytes(wav_bytes(noise(1.0), fmt=fmt, subtype=subtype), LIMITS)
    assert decoded.duration_s == pytest.approx(1.0, abs=0.01)


def test_file_path_errors_are_clear(tmp_path):
    with pytest.raises(InvalidAudio) as caught:
        decode_file(tmp_path / "absent.wav", LIMITS)
    assert caught.value.reason == "unreadable"
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(InvalidAudio) as caught:
        decode_file(empty, LIMITS)
    assert caught.value.reason == "empty"
    cut = tmp_path / "cut.wav"
    cut.write_bytes(wav_bytes(noise(2.0))[:3000])
    with pytest.raises(InvalidAudio) as caught:
        decode_file(cut, LIMITS)
    assert caught.value.reason == "truncated"
