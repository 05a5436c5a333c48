"""The fault switch: off unless a setting arms it, and each mode does what it says."""

import threading

import numpy as np
import pytest

from enhancement.errors import ModelError
from worker import faults


class Echo:
    name, device = "echo", "cpu"

    def enhance(self, samples: np.ndarray) -> np.ndarray:
        return samples * 2


def test_the_switch_is_off_unless_a_setting_arms_it(tmp_path):
    from worker.runtime import Runtime
    from worker.settings import load_settings

    plain = Runtime(load_settings(environ={}), enhancer=Echo())
    armed = Runtime(load_settings(environ={"ENHANCEMENT_FAULTS__CONTROL_FILE": str(tmp_path / "fault")}), enhancer=Echo())
    try:
        assert isinstance(plain.pipeline.enhancer, Echo)
        assert isinstance(armed.pipeline.enhancer, faults.FaultSwitch)
    finally:
        plain.shutdown()
        armed.shutdown()


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
