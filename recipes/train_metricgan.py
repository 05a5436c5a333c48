"""Train the shipped MetricGAN+ generator on the synthetic corpus.

The generator is SpeechBrain's ``EnhancementGenerator`` (the MetricGAN+
architecture, 1.9 M parameters), fed the same log1p-magnitude features that
``SpectralMaskEnhancement`` computes at inference. The full adversarial recipe
needs PESQ for every batch, which is too slow on two CPU cores, so the
generator is trained directly on a metric-shaped objective instead:

    loss = MSE(log1p |S_hat|, log1p |S|)  -  si_snr_weight * SI-SNR(s_hat, s)

The first term is MetricGAN's spectral pre-training loss; the second pushes
the resynthesised waveform (noisy phase, as at inference) toward the clean one.

Usage:
    python -m recipes.train_metricgan --out enhancement/checkpoints/metricgan-plus-synth
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from speechbrain.lobes.models.MetricGAN import EnhancementGenerator
from speechbrain.processing.features import ISTFT, STFT, spectral_magnitude
from speechbrain.processing.signal_processing import resynthesize

from recipes import corpus

SEED = 20261123
CLIP_SECONDS = 3.0
CROP_SECONDS = 2.0
SNR_RANGE_DB = (-5.0, 20.0)
LR_DROP_STEPS = (800, 1600, 2400)
HYPERPARAMS_TEMPLATE = Path(__file__).with_name("hyperparams.yaml")


def build_speech_pool(rng: np.random.Generator, clips_per_voice: int) -> np.ndarray:
    pool = [corpus.speech_clip(rng, voice, CLIP_SECONDS) for voice in corpus.TRAIN_VOICES for _ in range(clips_per_voice)]
    return np.stack(pool)


def training_noise(rng: np.random.Generator, kind: str, n: int, pool: np.ndarray) -> np.ndarray:
    # Babble from the in-memory pool keeps espeak-ng out of the training loop.
    if kind != "babble":
        return corpus.noise(rng, kind, n)
    talkers = pool[rng.integers(0, len(pool), size=int(rng.integers(3, 7)))]
    start = int(rng.integers(0, pool.shape[1] - n + 1))
    mix = talkers[:, start : start + n].sum(axis=0)
    return (mix / (np.sqrt(np.mean(mix**2)) + 1e-12)).astype(np.float32)


def make_batch(rng: np.random.Generator, pool: np.ndarray, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = int(CROP_SECONDS * corpus.SAMPLE_RATE_HZ)
    clean, noisy = [], []
    for _ in range(batch_size):
        clip = pool[int(rng.integers(0, len(pool)))]
        start = int(rng.integers(0, len(clip) - n + 1))
        speech = clip[start : start + n] * rng.uniform(0.2, 1.5)
        kind = str(rng.choice(corpus.TRAIN_NOISE_KINDS))
        mixture = corpus.mix_at_snr(speech, training_noise(rng, kind, n, pool), rng.uniform(*SNR_RANGE_DB))
        peak = float(np.max(np.abs(mixture)))
        scale = 0.99 / peak if peak > 0.99 else 1.0
        clean.append(speech * scale)
        noisy.append(mixture * scale)
    return torch.from_numpy(np.stack(clean)).float(), torch.from_numpy(np.stack(noisy)).float()


def si_snr_db(estimate: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    estimate = estimate - estimate.mean(dim=-1, keepdim=True)
    target = target - target.mean(dim=-1, keepdim=True)
    projection = (estimate * target).sum(-1, keepdim=True) / (target.pow(2).sum(-1, keepdim=True) + eps) * target
    residual = estimate - projection
    return 10 * torch.log10(projection.pow(2).sum(-1) / (residual.pow(2).sum(-1) + eps) + eps)


class Frontend(torch.nn.Module):
    """The exact feature path of SpeechBrain's SpectralMaskEnhancement."""

    def __init__(self) -> None:
        super().__init__()
        self.stft = STFT(sample_rate=16000, win_length=32, hop_length=16, n_fft=512, window_fn=torch.hamming_window)
        self.istft = ISTFT(sample_rate=16000, win_length=32, hop_length=16, window_fn=torch.hamming_window)

    def features(self, wavs: torch.Tensor) -> torch.Tensor:
        return torch.log1p(spectral_magnitude(self.stft(wavs), power=0.5))

    def resynthesize(self, enhanced_features: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
        return resynthesize(torch.expm1(enhanced_features), noisy, self.stft, self.istft)


def train(
    out_dir: Path,
    *,
    minutes: float,
    batch_size: int,
    clips_per_voice: int,
    si_snr_weight: float,
    resume: Path | None = None,
    seed: int = SEED,
    learning_rate: float = 1e-3,
) -> dict:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    started = time.monotonic()
    pool = build_speech_pool(rng, clips_per_voice)
    print(f"speech pool: {pool.shape[0]} clips x {CLIP_SECONDS} s in {time.monotonic() - started:.0f} s", flush=True)

    frontend = Frontend()
    generator = EnhancementGenerator()
    if resume is not None:
        generator.load_state_dict(torch.load(resume, map_location="cpu", weights_only=True))
    optimiser = torch.optim.Adam(generator.parameters(), lr=learning_rate)
    deadline = time.monotonic() + minutes * 60
    step, history = 0, []
    while time.monotonic() < deadline:
        clean, noisy = make_batch(rng, pool, batch_size)
        noisy_features, clean_features = frontend.features(noisy), frontend.features(clean)
        mask = generator(noisy_features, lengths=torch.ones(batch_size))
        enhanced_features = mask * noisy_features
        estimate = frontend.resynthesize(enhanced_features, noisy)
        spectral = torch.nn.functional.mse_loss(enhanced_features, clean_features)
        si_snr = si_snr_db(estimate, clean[:, : estimate.shape[-1]]).mean()
        loss = spectral - si_snr_weight * si_snr
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(generator.parameters(), 5.0)
        optimiser.step()
        step += 1
        history.append((spectral.item(), si_snr.item()))
        if step % 50 == 0:
            recent = np.mean(history[-50:], axis=0)
            print(f"step {step}: spectral mse {recent[0]:.4f}, si-snr {recent[1]:.2f} dB", flush=True)
        if step in LR_DROP_STEPS:
            for group in optimiser.param_groups:
                group["lr"] *= 0.5

    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(generator.state_dict(), out_dir / "enhance_model.ckpt")
    shutil.copyfile(HYPERPARAMS_TEMPLATE, out_dir / "hyperparams.yaml")
    summary = {
        "seed": seed,
        "learning_rate": learning_rate,
        "resumed_from": str(resume) if resume else None,
        "steps": step,
        "batch_size": batch_size,
        "crop_seconds": CROP_SECONDS,
        "speech_pool_clips": int(pool.shape[0]),
        "train_voices": list(corpus.TRAIN_VOICES),
        "train_noise_kinds": list(corpus.TRAIN_NOISE_KINDS),
        "snr_range_db": list(SNR_RANGE_DB),
        "si_snr_weight": si_snr_weight,
        "minutes": round((time.monotonic() - started) / 60, 1),
        "final_spectral_mse": float(np.mean([h[0] for h in history[-100:]])),
        "final_train_si_snr_db": float(np.mean([h[1] for h in history[-100:]])),
    }
    (out_dir / "training.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=40.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--clips-per-voice", type=int, default=60)
    parser.add_argument("--si-snr-weight", type=float, default=0.01)
    parser.add_argument("--resume", type=Path, help="continue from this enhance_model.ckpt")
    parser.add_argument("--seed", type=int, default=SEED, help="a second stage uses a new seed, so it sees new batches")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(
        json.dumps(
            train(
                args.out,
                minutes=args.minutes,
                batch_size=args.batch_size,
                clips_per_voice=args.clips_per_voice,
                si_snr_weight=args.si_snr_weight,
                resume=args.resume,
                seed=args.seed,
                learning_rate=args.learning_rate,
            ),
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
