"""enhance --shard: disjoint shards that together cover every input, with the index from an Indexed Job."""

from pathlib import Path

import pytest

from helpers.audio_files import wav_bytes
from worker import cli
from worker.shards import Shard, ShardError, parse_shard, select


def pairs_for(names: list[str], out: Path) -> list[tuple[Path, Path]]:
    return [(Path("/in") / name, out / name) for name in names]


def test_shards_are_disjoint_and_cover_every_input_in_any_order():
    out = Path("/out")
    names = [f"speaker{i // 100}/clip{i:05d}.wav" for i in range(10_000)]
    pairs = pairs_for(names, out)
    shards = [select(pairs, out, Shard(index, 7)) for index in range(7)]
    chosen = [pair for shard in shards for pair in shard]
    assert len(chosen) == len(pairs) and set(chosen) == set(pairs), "every input once"
    assert min(len(s) for s in shards) > 0.9 * len(pairs) / 7, "near-even shards"
    reversed_shard = select(list(reversed(pairs)), out, Shard(3, 7))
    assert set(reversed_shard) == set(shards[3]), "the listing order does not move a file"


def test_the_index_comes_from_the_indexed_job_when_only_the_count_is_given():
    assert parse_shard("2/8") == Shard(2, 8)
    assert parse_shard("8", {"JOB_COMPLETION_INDEX": "5"}) == Shard(5, 8)
    assert parse_shard("1/8", {"JOB_COMPLETION_INDEX": "5"}) == Shard(1, 8), "an explicit index wins"


@pytest.mark.parametrize(
    ("spec", "environ", "complaint"),
    [("8", {}, "JOB_COMPLETION_INDEX"), ("8/8", {}, "from 0 to COUNT-1"), ("a/b", {}, "whole numbers"), ("0/0", {}, "at least 1")],
)
def test_a_shard_that_names_no_shard_is_refused(spec, environ, complaint):
    with pytest.raises(ShardError, match=complaint):
        parse_shard(spec, environ)


def test_two_shard_runs_write_every_output_once(tmp_path, speech, monkeypatch, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(6):
        (inputs / f"clip{i}.wav").write_bytes(wav_bytes(speech[: 16000 + 800 * i]))
    out = tmp_path / "out"
    written = []
    for index in range(2):
        monkeypatch.setenv("JOB_COMPLETION_INDEX", str(index))
        assert cli.main(["enhance", str(inputs), "--out", str(out), "--shard", "2"]) == cli.EXIT_OK
        now = sorted(p.name for p in out.rglob("*.wav"))
        written.append(set(now) - set().union(*written) if written else set(now))
    assert written[0] and written[1] and not written[0] & written[1]
    assert written[0] | written[1] == {f"clip{i}.wav" for i in range(6)}
    monkeypatch.delenv("JOB_COMPLETION_INDEX")
    assert cli.main(["enhance", str(inputs), "--out", str(out), "--shard", "2"]) == cli.EXIT_USAGE
    assert "JOB_COMPLETION_INDEX" in capsys.readouterr().err
