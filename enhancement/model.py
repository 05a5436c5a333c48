"""MetricGAN+ through SpeechBrain, loaded from a local directory.

The directory has the official Hugging Face layout (``hyperparams.yaml`` and
``enhance_model.ckpt``), so ``speechbrain/metricgan-plus-voicebank`` drops in.
SpeechBrain loads parameters with ``strict=False``: a checkpoint for another
architecture would load silently and leave random weights. The loader
therefore compares the checkpoint's keys and shapes with the model's own and
refuses any mismatch.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

from enhancement.config import SHIPPED_MODEL_DIR
from enhancement.errors import CheckpointMismatch, ModelError, ModelUnavailable, Reason, TransientModelError

logger = logging.getLogger(__name__)

REQUIRED_FILES = ("hyperparams.yaml", "enhance_model.ckpt")
MODEL_NAME = "metricgan_plus"


@dataclass(frozen=True)
class CheckpointIdentity:
    """Which weights a worker runs, for build_info and /readyz: two images must never look alike."""

    name: str  # "shipped" for the checkpoint in this package, else the model directory's name
    sha256: str  # the first 12 hex digits of enhance_model.ckpt's SHA-256, or "missing"


def checkpoint_identity(source: Path) -> CheckpointIdentity:
    source = Path(source)
    name = "shipped" if source.resolve() == SHIPPED_MODEL_DIR.resolve() else source.resolve().name
    checkpoint = source / "enhance_model.ckpt"
    if not checkpoint.is_file():
        return CheckpointIdentity(name, "missing")
    digest = hashlib.sha256()
    with checkpoint.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return CheckpointIdentity(name, digest.hexdigest()[:12])


def resolve_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ModelUnavailable("device 'cuda' was requested but no CUDA device is available", reason=Reason.DEVICE_UNAVAILABLE)
    return requested


def _verify_checkpoint(model: torch.nn.Module, checkpoint: Path) -> None:
    import torch

    try:
        stored = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a bad file
        raise CheckpointMismatch(f"{checkpoint.name} is not a readable PyTorch checkpoint: {exc}") from exc
    if not isinstance(stored, dict):
        raise CheckpointMismatch(f"{checkpoint.name} does not hold a state dict")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(stored) if tuple(expected[k].shape) != tuple(getattr(stored[k], "shape", ())))
    if missing or unexpected or reshaped:

        def sample(keys: list[str]) -> str:
            return ", ".join(keys[:3]) + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")

        problems = []
        if missing:
            problems.append(f"missing {len(missing)} keys: {sample(missing)}")
        if unexpected:
            problems.append(f"unexpected {len(unexpected)} keys: {sample(unexpected)}")
        if reshaped:
            problems.append(f"{len(reshaped)} keys with other shapes: {sample(reshaped)}")
        raise CheckpointMismatch(f"{checkpoint} does not match the model in hyperparams.yaml: " + "; ".join(problems))


class MetricGanEnhancer:
    """Loads once, then enhances 16 kHz mono float32 arrays."""

    name = MODEL_NAME

    def __init__(self, source: Path | str, device: str = "auto") -> None:
        self.source = Path(source)
        self.requested_device = device
        self.device: str | None = None
        self.load_seconds: float | None = None
        self.parameter_count: int | None = None
        self._model = None
        self._savedir = tempfile.TemporaryDirectory(prefix="enhancement-model-")

    def load(self) -> None:
        missing = [name for name in REQUIRED_FILES if not (self.source / name).is_file()]
        if missing:
            raise ModelUnavailable(f"model directory {self.source} lacks {', '.join(missing)}")
        started = time.perf_counter()
        device = resolve_device(self.requested_device)
        try:
            from speechbrain.inference.enhancement import SpectralMaskEnhancement

            model = SpectralMaskEnhancement.from_hparams(
                source=str(self.source.resolve()), savedir=self._savedir.name, run_opts={"device": device}
            )
        except ModelUnavailable:
            raise
        except RuntimeError as exc:
            if "size mismatch" in str(exc):  # torch refuses wrong shapes even when loading non-strictly
                raise CheckpointMismatch(f"{self.source} does not match the model in hyperparams.yaml: {exc}") from exc
            raise ModelUnavailable(f"SpeechBrain could not load {self.source}: {exc}") from exc
        except Exception as exc:  # SpeechBrain surfaces YAML, import and torch errors unchanged
            raise ModelUnavailable(f"SpeechBrain could not load {self.source}: {exc}") from exc
        _verify_checkpoint(model.mods.enhance_model, self.source / "enhance_model.ckpt")
        model.mods.eval()
        self._model = model
        self.device = device
        self.parameter_count = sum(p.numel() for p in model.mods.enhance_model.parameters())
        self.load_seconds = time.perf_counter() - started
        logger.info("loaded %s from %s on %s in %.2f s", self.name, self.source, device, self.load_seconds)

    def enhance(self, samples: np.ndarray) -> np.ndarray:
        if self._model is None:
            raise ModelUnavailable("model is not loaded")
        import torch

        try:
            with torch.inference_mode():
                batch = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).unsqueeze(0)
                enhanced = self._model.enhance_batch(batch, lengths=torch.tensor([1.0]))
            out = enhanced.squeeze(0).float().cpu().numpy()
        except torch.cuda.OutOfMemoryError as exc:
            raise TransientModelError(f"device out of memory: {exc}") from exc
        except Exception as exc:
            raise ModelError(f"model inference failed: {exc}") from exc
        if not np.all(np.isfinite(out)):
            raise ModelError("model produced NaN or infinite samples", reason=Reason.MODEL_NON_FINITE)
        return out[: len(samples)]
