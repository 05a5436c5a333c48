"""The test-only fault switch: off unless armed by the environment, and each mode does what it says."""

import threading

import numpy as np
import pytest

from enhancement.errors import ModelError
from exporter import faults


class Echo:
    name, device = "echo", "cpu"

    def enhance(self, samples: np.ndarray) -> np.ndarray:
        return samples * 2


def test_the_switch_is_off_unless_the_environment_arms_it(monkeypatch, tmp_path):
    monkeypatch.delenv(faults.ENV_FAULT_FILE, raising=False)
    inner = Echo()
    assert faults.arm_from_environment(inner) is inner
    monkeypatch.setenv(faults.ENV_FAULT_FILE, str(tmp_path / "fault"))
    assert isinstance(faults.arm_from_environment(inner), faults.FaultSwitch)
    assert faults.arm_from_environment(None) is None


def test_raise_makes_the_model_raise_and_clearing_the_file_lets_calls_through(tmp_path):
    control = tmp_path / "fault"
    switch = faults.FaultSwitch(Echo(), control)
    assert switch.enhance(np.ones(3)).tolist() == [2, 2, 2], "no file: untouched"
    control.write_text("raise\n")
    with pytest.raises(ModelError, match="injected"):
        switch.enhance(np.ones(3))
    control.write_text("")
    assert switch.enhance(np.ones(3)).tolist() == [2, 2, 2]


def test_hang_blocks_until_the_file_changes_and_then_finishes_the_call(tmp_path):
    control = tmp_path / "fault"
    control.write_text("hang")
    switch = faults.FaultSwitch(Echo(), control)
    results = []
    caller = threading.Thread(target=lambda: results.append(switch.enhance(np.ones(2))))
    caller.start()
    caller.join(0.5)
    assert caller.is_alive() and not results, "still hanging while the file says hang"
    control.write_text("")
    caller.join(5)
    assert not caller.is_alive() and results[0].tolist() == [2, 2]
