"""The ``enhancement-worker`` command.

enhancement-worker enhance INPUT... --out DIR [--report FILE.json] [--shard INDEX/COUNT] [--config F]
enhancement-worker check-config [--config F]
enhancement-worker serve [--host H] [--port P] [--config F]
enhancement-worker loadgen --url U --rate R --duration D [--corpus DIR]
enhancement-worker receiver [--host H] [--port P]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from enhancement.decode import AUDIO_SUFFIXES
from enhancement.errors import EnhancementError
from enhancement.pipeline import Pipeline
from enhancement.result import STAGES, ClipResult, Outcome
from exporter.logs import configure_logging
from ops import loadgen
from ops.receiver import DEFAULT_HEARTBEAT_TIMEOUT_SECONDS, Receiver
from ops.top import app as top_app
from worker.api.app import create_app
from worker.readiness import production_report
from worker.runtime import Runtime
from worker.settings import Settings, load_settings
from worker.shards import ShardError, parse_shard, select

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

logger = logging.getLogger("enhancement_worker")


class UsageError(Exception):
    """The command line asks for something impossible; nothing has been written."""


def collect_inputs(inputs: list[Path], out_dir: Path, suffix: str) -> list[tuple[Path, Path]]:
    """Pair each input file with its output path; directories are searched for audio files."""
    pairs: list[tuple[Path, Path]] = []
    for given in inputs:
        if given.is_dir():
            found = sorted(p for p in given.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            # The resolved name: `a/..` is named "..", which would lead out of --out.
            pairs += [(p, out_dir / given.resolve().name / p.relative_to(given).with_suffix(suffix)) for p in found]
        elif given.exists():
            pairs.append((given, out_dir / given.with_suffix(suffix).name))
        else:
            raise UsageError(f"input {given} does not exist")
    sources = {p.resolve() for p, _ in pairs}
    out_root = out_dir.resolve()
    targets: dict[Path, Path] = {}
    for source, target in pairs:
        resolved = target.resolve()
        if not resolved.is_relative_to(out_root):
            raise UsageError(f"{source} would be written to {resolved}, outside {out_root}")
        if resolved in sources:
            raise UsageError(f"refusing to write over the input {source}: choose another --out")
        if resolved in targets:
            raise UsageError(f"{source} and {targets[resolved]} would both be written to {target}")
        targets[resolved] = source
    return pairs


def summary_table(results: list[ClipResult]) -> str:
    outcomes = Counter(r.outcome.value for r in results)
    lines = ["outcome    clips"]
    lines += [f"{o.value:<10} {outcomes.get(o.value, 0):>5}" for o in Outcome]
    stage_seconds: defaultdict[str, float] = defaultdict(float)
    for r in results:
        for stage in r.stages:
            stage_seconds[stage.name] += stage.duration_s
    total = sum(stage_seconds.values()) or 1.0
    lines += ["", "stage                total s   share"]
    lines += [f"{name:<20} {stage_seconds[name]:>7.3f}  {stage_seconds[name] / total:>6.1%}" for name in STAGES if name in stage_seconds]
    audio = sum(r.audio_duration_s for r in results)
    processing = sum(r.processing_s for r in results)
    lines += ["", f"audio {audio:.1f} s, processing {processing:.2f} s"]
    if audio > 0:
        lines.append(f"real-time factor {processing / audio:.3f} (below 1 is faster than real time)")
    fallbacks = Counter(f"{f.stage}: {f.from_method} -> {f.to_method} ({f.reason})" for r in results for f in r.fallbacks)
    if fallbacks:
        lines += ["", "fallbacks"] + [f"  {count} x {what}" for what, count in fallbacks.most_common()]
    return "\n".join(lines)


# What signal.signal returns and takes: a handler, SIG_DFL/SIG_IGN, or None for one set outside Python.
Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class _StopOnSignal:
    """SIGTERM or SIGINT during a batch: finish the clip in progress, write nothing more, report.

    A second signal gets the default behaviour back, for an operator who really means it.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Handler] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        for other in self.SIGNALS:
            signal.signal(other, self._previous[other])

    def __enter__(self) -> _StopOnSignal:
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


def _progress(total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="clip", file=sys.stderr, disable=None, dynamic_ncols=True)


def command_enhance(args: argparse.Namespace, config: Settings) -> int:
    suffix = "." + config.output.format
    pairs = collect_inputs(args.inputs, args.out, suffix)
    if not pairs:
        raise UsageError("no audio files found in the given inputs")
    if args.shard is not None:
        try:
            shard = parse_shard(args.shard)
        except ShardError as exc:
            raise UsageError(str(exc)) from exc
        pairs = select(pairs, args.out, shard)
        print(f"shard {shard.index}/{shard.count}: {len(pairs)} files", file=sys.stderr)
    pipeline = Pipeline.from_config(config)
    results: list[ClipResult] = []
    stopping = _StopOnSignal()
    try:
        with stopping, _progress(len(pairs)) as bar:
            for source, target in pairs:
                if stopping.signum is not None:
                    break
                result = pipeline.process_file(source, target)
                results.append(result)
                if result.outcome in (Outcome.REJECTED, Outcome.FAILED):
                    bar.write(f"{source}: {result.outcome.value}: {result.error}")
                bar.update(1)
    finally:
        pipeline.close()
    print(summary_table(results))
    if args.report:
        args.report.write_text(json.dumps([r.to_dict() for r in results], indent=2, default=str) + "\n")
        print(f"report written to {args.report}")
    if stopping.signum is not None:
        name = signal.Signals(stopping.signum).name
        print(f"stopped by {name} after {len(results)} of {len(pairs)} clips; the clip in progress was finished", file=sys.stderr)
        return 128 + stopping.signum
    outcomes = {r.outcome for r in results}
    if Outcome.FAILED in outcomes:
        return EXIT_FAILED
    return EXIT_USAGE if Outcome.REJECTED in outcomes else EXIT_OK


def command_check_config(args: argparse.Namespace, config: Settings) -> int:
    checks = production_report(config)
    width = max(len(c.name) for c in checks)
    for check in checks:
        print(f"[{'ok' if check.ok else 'FAIL'}] {check.name:<{width}}  {check.detail}")
    ready = all(c.ok for c in checks if c.required)
    print("ready for production" if ready else "NOT ready for production")
    return EXIT_OK if ready else EXIT_FAILED


def command_serve(args: argparse.Namespace, config: Settings) -> int:
    import uvicorn

    runtime = Runtime(config)
    app = create_app(runtime)
    host = args.host or config.service.host
    port = args.port if args.port is not None else config.service.port
    # uvicorn turns SIGTERM into a graceful shutdown: no new connections, open requests
    # finish, then the lifespan hook drains the queue and flushes spans.
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, timeout_graceful_shutdown=60)
    return EXIT_OK


def command_loadgen(args: argparse.Namespace, config: Settings) -> int:
    clips = loadgen.load_corpus(args.corpus)
    token = args.token_file.read_text().strip() if args.token_file else None
    report = loadgen.run(
        args.url,
        rate=args.rate,
        duration_s=args.duration,
        clips=clips,
        token=token,
        concurrency=args.concurrency,
        jobs_share=args.jobs_share,
    )
    print(report.summary())
    return EXIT_OK if report.statuses.get(200) else EXIT_FAILED


def command_receiver(args: argparse.Namespace, config: Settings) -> int:
    receiver = Receiver(args.host, args.port, log_path=args.log, heartbeat_timeout_s=args.heartbeat_timeout)
    print(f"receiving Alertmanager notifications at {receiver.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        receiver.serve_forever()
    return EXIT_OK


def command_top(args: argparse.Namespace, config: Settings) -> int:
    return top_app.main(args.url, args.prometheus, args.alertmanager, args.interval, args.once)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="enhancement-worker", description="Observable speech-enhancement worker.")
    parser.add_argument("--config", type=Path, help="YAML settings file (defaults work without one)")
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    commands = parser.add_subparsers(dest="command", required=True)

    enhance = commands.add_parser("enhance", help="enhance files and directories")
    enhance.add_argument("inputs", nargs="+", type=Path, help="audio files or directories")
    enhance.add_argument("--out", type=Path, required=True, help="output directory")
    enhance.add_argument("--report", type=Path, help="write every clip's result as JSON")
    enhance.add_argument(
        "--shard",
        metavar="INDEX/COUNT",
        help="process only this shard of the inputs; COUNT alone takes INDEX from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job)",
    )
    enhance.set_defaults(handler=command_enhance)

    check = commands.add_parser("check-config", help="production-readiness report")
    check.set_defaults(handler=command_check_config)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help="address to bind (default from config: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default from config: 8080)")
    serve.set_defaults(handler=command_serve)

    load = commands.add_parser("loadgen", help="drive a running service at a fixed rate")
    load.add_argument("--url", required=True, help="base URL of the service, e.g. http://127.0.0.1:8080")
    load.add_argument("--rate", type=float, required=True, help="requests per second")
    load.add_argument("--duration", type=float, required=True, help="seconds to send for")
    load.add_argument("--corpus", type=Path, help="directory of clips to send (default: generated clips)")
    load.add_argument("--concurrency", type=int, default=16, help="most requests open at once")
    load.add_argument("--jobs-share", type=float, default=0.0, help="share of clips sent through /v1/jobs (submit, poll, collect)")
    load.add_argument("--token-file", type=Path, help="file holding the bearer token")
    load.set_defaults(handler=command_loadgen)

    receiver = commands.add_parser("receiver", help="log Alertmanager webhook notifications")
    receiver.add_argument("--host", default="127.0.0.1")
    receiver.add_argument("--port", type=int, default=9095)
    receiver.add_argument("--log", type=Path, help="also append each notification to this JSON-lines file")
    receiver.add_argument(
        "--heartbeat-timeout",
        type=float,
        default=DEFAULT_HEARTBEAT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"raise WatchdogHeartbeatMissing after this long without a Watchdog heartbeat (default {DEFAULT_HEARTBEAT_TIMEOUT_SECONDS:g})",
    )
    receiver.set_defaults(handler=command_receiver)

    top = commands.add_parser("top", help="live terminal view of a worker (--url) or a fleet (--prometheus)")
    source = top.add_mutually_exclusive_group(required=True)
    source.add_argument("--url", help="a worker's base URL: reads its /metrics and /readyz")
    source.add_argument("--prometheus", help="a Prometheus base URL: every replica of the worker job, and the recording rules")
    top.add_argument("--alertmanager", help="an Alertmanager base URL, for the active alerts")
    top.add_argument("--interval", type=float, default=3.0, metavar="SECONDS", help="refresh interval (default 3)")
    top.add_argument("--once", action="store_true", help="print one plain-text snapshot and exit")
    top.set_defaults(handler=command_top)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    try:
        config = load_settings(args.config)
        return args.handler(args, config)
    except UsageError as exc:
        print(f"enhancement-worker: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except EnhancementError as exc:
        print(f"enhancement-worker: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
