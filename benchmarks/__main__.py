"""One entry point for the regression benchmarks: ``python -m benchmarks SUITE [options]``.

Suites: ``quality`` (detection quality against the baselines), ``speed`` (training and scoring
rates), ``stream`` (Kafka to stored row, end to end), ``store`` (bulk event inserts), ``detectors``
(both detectors through the CLI), ``ui`` (review pages over a million stored events) and ``retrain``
(scoring throughput while a retrain runs), ``train`` (GANomaly training steps/s per Keras
backend); ``render`` rewrites every suite's docs section from
the raw JSON already there, running nothing. Each suite writes its own section of the docs file
(with this exact command and the machine) and a JSON of raw figures beside it. ``--docs`` points
both elsewhere; a ``--size smoke`` run without ``--docs`` writes into a temporary folder, so tests
and trial runs never rewrite the committed docs/benchmarks.md. One-off sweeps live in
``experiments/``, not here.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# As the CLI runs TensorFlow (anomaly.cli._quiet_tensorflow): without oneDNN's CPU-dependent kernels.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from benchmarks.report import DOCS  # noqa: E402

SIZES = ("smoke", "full")


def _log(line: str) -> None:
    print(line, flush=True)


def _parser() -> argparse.ArgumentParser:
    from benchmarks import quality

    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    suites = parser.add_subparsers(dest="suite", required=True, metavar="SUITE")

    def suite(
        name: str,
        help: str,
        sizes: tuple[str, ...] = SIZES,
        default: str = "full",
        flags: tuple[str, ...] = ("--size",),
    ) -> argparse.ArgumentParser:
        sub = suites.add_parser(name, help=help, description=help)
        sub.add_argument(
            *flags,
            dest="size",
            choices=sizes,
            default=default,
            help=f"problem size (default {default}); smoke takes well under a minute and its figures mean nothing",
        )
        sub.add_argument(
            "--docs",
            type=Path,
            help="markdown file to write the section into (default docs/benchmarks.md; a smoke run: a temporary "
            "file); raw JSON goes to the folder of the same name",
        )
        return sub

    q = suite(
        "quality",
        "how well each detector and baseline separates anomalies, on real data",
        sizes=tuple(quality.CONFIGS),
        default="small",
        # --config, the option's older name, stays: the commands of earlier runs in the docs use it.
        flags=("--size", "--config"),
    )
    q.add_argument("--seeds", type=int, help="number of seeds (default: the configuration's)")
    q.add_argument(
        "--datasets", nargs="+", choices=quality.FAMILIES, default=list(quality.FAMILIES), help="dataset families"
    )
    q.add_argument("--detectors", nargs="+", help="detector and baseline names (default: every one)")
    q.add_argument("--epochs", type=int, help="epochs for every dataset (default: the configuration's)")

    suite("speed", "training time, scoring throughput and latency, AnoGAN's batched search, GFLOP/s")

    s = suite("stream", "Kafka to stored row: throughput of a backlog and latency at half the target rate")
    s.add_argument("--readings", type=int, help="sensor readings in the backlog (default: the size's, 30000)")
    s.add_argument("--images", type=int, help="images in the backlog (default: the size's, 3000)")
    s.add_argument("--seconds", type=float, help="length of each latency run (default: the size's, 20)")
    s.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    s.add_argument("--bootstrap-servers", help="Kafka broker (default: ANOMALY_KAFKA_BOOTSTRAP or the local one)")

    st = suite("store", "bulk event inserts per second on SQLite and PostgreSQL")
    st.add_argument("--batches", type=int, help="batches to write (default: the size's, 50)")
    st.add_argument("--batch-size", type=int, help="events per batch (default: the size's, 1000)")
    st.add_argument("--no-postgres", action="store_true", help="only measure SQLite")

    d = suite("detectors", "both detectors trained and evaluated through the CLI on real data")
    d.add_argument("--only", nargs="+", help="run names (default: every run of the size)")

    u = suite("ui", "review pages' response times with a million events in PostgreSQL")
    u.add_argument("--events", type=int, help="events to store (default: the size's, 1000000)")
    u.add_argument("--repeats", type=int, help="timed requests per page (default: the size's, 20)")

    r = suite("retrain", "scoring throughput before, during and after a retrain in its own niced process")
    r.add_argument("--seconds", type=float, help="length of the before and after phases (default: the size's, 20)")
    r.add_argument("--epochs", type=int, help="epochs of the retrain (default: the size's, 3)")
    r.add_argument("--nice", type=int, default=10, help="the retrain process's niceness (default 10)")
    r.add_argument("--threads", type=int, default=1, help="the retrain process's threads (default 1)")

    t = suite(
        "train", "GANomaly 64x64 training steps/s and scoring rate on each Keras backend, each in its own process"
    )
    t.add_argument(
        "--backends", nargs="+", default=["tensorflow", "jax", "torch"], help="backends to measure (default: all)"
    )
    t.add_argument("--steps", type=int, help="timed training steps (default: the size's, 50)")

    render = suites.add_parser("render", help="rewrite every suite's docs section from its raw JSON, running nothing")
    render.add_argument("--docs", type=Path, default=DOCS)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    command = shlex.join(["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)])
    if args.suite == "render":
        _render(args.docs)
        return
    temporary = None
    if args.docs is None and args.size == "smoke":
        temporary = tempfile.mkdtemp(prefix="benchmarks-smoke-")
        args.docs = Path(temporary) / "benchmarks.md"
    docs = args.docs or DOCS
    _run(args, docs, command)
    if temporary:
        _log(f"smoke run: wrote {docs}")


def _run(args: argparse.Namespace, docs: Path, command: str) -> None:
    if args.suite == "quality":
        from benchmarks import quality

        detectors = tuple(args.detectors) if args.detectors else (*quality.GAN_DETECTORS, *quality.BASELINES)
        quality.run(
            quality.CONFIGS[args.size],
            seeds=args.seeds,
            families=tuple(args.datasets),
            detectors=detectors,
            epochs=args.epochs,
            docs=docs,
            command=command,
            log=_log,
        )
    elif args.suite == "speed":
        from benchmarks import speed

        speed.run(docs=docs, command=command, log=_log, size=speed.SIZES[args.size])
    elif args.suite == "stream":
        from benchmarks import stream_e2e

        stream_e2e.run(
            size=stream_e2e.SIZES[args.size],
            readings=args.readings,
            images=args.images,
            seconds=args.seconds,
            database=args.database,
            bootstrap_servers=args.bootstrap_servers,
            docs=docs,
            command=command,
            log=_log,
        )
    elif args.suite == "store":
        from benchmarks import store_inserts

        batches, batch_size = store_inserts.SIZES[args.size]
        store_inserts.run(
            batches=args.batches or batches,
            batch_size=args.batch_size or batch_size,
            postgres=not args.no_postgres,
            docs=docs,
            command=command,
            log=_log,
        )
    elif args.suite == "ui":
        from benchmarks import ui_pages

        events, repeats = ui_pages.SIZES[args.size]
        ui_pages.run(
            events=args.events or events, repeats=args.repeats or repeats, docs=docs, command=command, log=_log
        )
    elif args.suite == "retrain":
        from benchmarks import retrain_throughput

        retrain_throughput.run(
            size=retrain_throughput.SIZES[args.size],
            seconds=args.seconds,
            epochs=args.epochs,
            nice=args.nice,
            threads=args.threads,
            docs=docs,
            command=command,
            log=_log,
        )
    elif args.suite == "train":
        from benchmarks import train_steps

        train_steps.run(
            size=train_steps.SIZES[args.size],
            backends=tuple(args.backends),
            steps=args.steps,
            docs=docs,
            command=command,
            log=_log,
        )
    else:
        from benchmarks import detectors_cli

        detectors_cli.run(only=args.only, size=args.size, docs=docs, command=command, log=_log)


def _render(docs: Path) -> None:
    from benchmarks import (
        detectors_cli,
        quality,
        retrain_throughput,
        speed,
        store_inserts,
        stream_e2e,
        train_steps,
        ui_pages,
    )

    for suite in (quality, speed, stream_e2e, store_inserts, detectors_cli, ui_pages, retrain_throughput, train_steps):
        for title in suite.rerender(docs):
            _log(f"rewrote {title}")


if __name__ == "__main__":
    main()
