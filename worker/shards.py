"""Splitting a batch across workers: ``enhance --shard INDEX/COUNT``, or ``--shard COUNT`` inside a
Kubernetes Indexed Job, which gives each pod its index in ``JOB_COMPLETION_INDEX``.

A file's shard is a hash of its output path (relative to ``--out``), not its position in a listing:
shards are disjoint and together cover every input, whatever order each worker lists them in, and
files added later do not move the others.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

INDEX_VARIABLE = "JOB_COMPLETION_INDEX"


class ShardError(ValueError):
    """A --shard value that names no shard."""


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def holds(self, key: str) -> bool:
        digest = hashlib.sha256(key.encode()).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index


def parse_shard(spec: str, environ: Mapping[str, str] | None = None) -> Shard:
    """``I/N``, or ``N`` with the index from JOB_COMPLETION_INDEX."""
    environ = os.environ if environ is None else environ
    index_text, _, count_text = spec.rpartition("/")
    if not index_text:
        index_text = environ.get(INDEX_VARIABLE, "")
        if not index_text:
            raise ShardError(f"--shard {spec} gives no index: write INDEX/COUNT, or set {INDEX_VARIABLE} (an Indexed Job does)")
    try:
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise ShardError(f"--shard {spec}: INDEX and COUNT must be whole numbers") from None
    if count < 1 or not 0 <= index < count:
        raise ShardError(f"--shard {spec}: the index must be from 0 to COUNT-1, and COUNT at least 1")
    return Shard(index, count)


def select(pairs: list[tuple[Path, Path]], out_dir: Path, shard: Shard) -> list[tuple[Path, Path]]:
    """The (input, output) pairs of this shard."""
    return [(source, target) for source, target in pairs if shard.holds(target.relative_to(out_dir).as_posix())]
