"""Property-based fuzzing of decode. Run by test_hostile_inputs.py in a fresh interpreter."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enhancement.config import AudioLimits
from enhancement.decode import decode_bytes
from enhancement.errors import InvalidAudio
from helpers.hostile_corpus import _speechlike, _wav


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_decode_never_fails_with_anything_but_invalid_audio(data):
    try:
        decoded = decode_bytes(data, AudioLimits())
    except InvalidAudio as exc:
        assert exc.reason and str(exc)
    else:
        assert decoded.samples.dtype.name == "float32" and len(decoded.samples) > 0


HEADER = _wav(_speechlike(1.0))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 43), st.integers(0, 255)), min_size=1, max_size=8))
def test_decode_survives_corrupted_wav_headers(edits):
    data = bytearray(HEADER)
    for offset, value in edits:
        data[offset] = value
    try:
        decoded = decode_bytes(bytes(data), AudioLimits())
    except InvalidAudio as exc:
        assert exc.reason
    else:
        assert len(decoded.samples) > 0
