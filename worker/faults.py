"""A fault switch for the model, for the live fault-injection suite.

Imported and armed only when the ``faults.control_file`` setting is given
(``ENHANCEMENT_FAULTS__CONTROL_FILE``); nothing in the HTTP API can turn it
on. While armed, each model call reads that file:
``raise`` makes the model raise, ``hang`` makes it hang past any deadline
for as long as the file says so (a stall that clears, like a wedged GPU
queue), anything else (or no file) lets the call through untouched.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from enhancement.errors import ModelError
from enhancement.pipeline import Enhancer

logger = logging.getLogger(__name__)

HANG_SECONDS = 3600.0
HANG_POLL_SECONDS = 0.1


class FaultSwitch:
    def __init__(self, inner: Enhancer, control: Path) -> None:
        logger.warning("FAULT SWITCH ARMED: model calls obey %s; never set faults.control_file in production", control)
        self._inner = inner
        self._control = control
        self.name = inner.name
        self.device = getattr(inner, "device", None)

    def _mode(self) -> str:
        try:
            return self._control.read_text().strip()
        except OSError:
            return ""

    def enhance(self, samples: np.ndarray) -> np.ndarray:
        mode = self._mode()
        if mode == "raise":
            raise ModelError("injected fault: model raises")
        if mode == "hang":
            until = time.monotonic() + HANG_SECONDS
            while self._mode() == "hang" and time.monotonic() < until:
                time.sleep(HANG_POLL_SECONDS)
        return self._inner.enhance(samples)
