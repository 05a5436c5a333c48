import errno
import os

import numpy as np
import pytest
import soundfile as sf

from enhancement.config import OutputSettings
from enhancement.encode import encode_bytes, write_atomic
from enhancement.errors import OutputWriteError

AUDIO = (0.1 * np.sin(np.linspace(0, 200, 16000))).astype(np.float32)


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_written_file_reads_back(tmp_path, fmt):
    target = tmp_path / f"out.{fmt}"
    write_atomic(target, AUDIO, 16000, OutputSettings(format=fmt))
    data, rate = sf.read(target, dtype="float32")
    assert rate == 16000 and np.allclose(data, AUDIO, atol=1e-3)
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_refuses_to_overwrite_the_input(tmp_path):
    source = tmp_path / "in.wav"
    source.write_bytes(encode_bytes(AUDIO, 16000, OutputSettings()))
    before = source.read_bytes()
    with pytest.raises(OutputWriteError) as caught:
        write_atomic(tmp_path / "." / "in.wav", AUDIO * 2, 16000, OutputSettings(), protected=source)
    assert caught.value.reason == "would_overwrite_input"
    assert source.read_bytes() == before


def test_disk_full_leaves_nothing_behind(tmp_path, monkeypatch):
    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OutputWriteError) as caught:
        write_atomic(tmp_path / "out.wav", AUDIO, 16000, OutputSettings())
    assert caught.value.reason == "disk_full"
    assert list(tmp_path.iterdir()) == []


def test_existing_output_survives_a_failed_rewrite(tmp_path, monkeypatch):
    target = tmp_path / "out.wav"
    write_atomic(target, AUDIO, 16000, OutputSettings())
    before = target.read_bytes()

    def broken_replace(src, dst):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OutputWriteError):
        write_atomic(target, AUDIO * 3, 16000, OutputSettings())
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]
