"""What every benchmark shares: an argument parser with --json, and writing the figures."""

from __future__ import annotations

import argparse
import json

import numpy as np

from enhancement.encode import audio_bytes

RATE_HZ = 16_000


def parser(doc: str) -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    made.add_argument("--json", help="also write the figures to this file")
    return made


def save(path: str | None, figures: dict) -> None:
    if path:
        with open(path, "w") as out:
            json.dump(figures, out, indent=2)


def wav_bytes(samples: np.ndarray, rate: int = RATE_HZ) -> bytes:
    return audio_bytes(samples, rate)
