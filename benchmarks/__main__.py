"""One entry point for the benchmark suites: ``python -m benchmarks SUITE [--config NAME] [--seeds N]``.

Each suite writes its own ``## `` section of the docs file (with this exact command and the
machine) and a JSON of raw figures beside it. ``--docs`` points both elsewhere, so tests and trial
runs never rewrite the committed docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.report import DOCS  # noqa: E402


def _log(line: str) -> None:
    print(line, flush=True)


def main(argv: list[str] | None = None) -> None:
    from benchmarks import quality

    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument(
        "suite",
        choices=["quality", "speed", "defaults", "image-defaults", "render"],
        help="defaults: the development sweep behind the series defaults; "
        "image-defaults: the one behind the image defaults, on painted-on defects; "
        "render: rewrite the docs sections from the raw JSON already there, running nothing",
    )
    parser.add_argument(
        "--config",
        choices=sorted(quality.CONFIGS),
        default="small",
        help="quality: problem sizes (smoke < 1 min, small = this CPU, full = a GPU or long run)",
    )
    parser.add_argument("--seeds", type=int, help="quality: number of seeds (default: the config's)")
    parser.add_argument(
        "--datasets",
        nargs="+",
        choices=quality.FAMILIES,
        default=list(quality.FAMILIES),
        help="quality: dataset families to run",
    )
    parser.add_argument(
        "--detectors",
        nargs="+",
        help="quality: detector and baseline names (default: ganomaly, anogan and every baseline)",
    )
    parser.add_argument("--epochs", type=int, help="quality: epochs for every dataset (default: the config's)")
    parser.add_argument(
        "--docs",
        type=Path,
        default=Path(os.environ.get("BENCHMARKS_DOCS", DOCS)),
        help="markdown file to write sections into; raw JSON goes to the folder of the same name",
    )
    args = parser.parse_args(argv)
    shown = ["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)]
    command = shlex.join(shown)
    if args.suite == "quality":
        detectors = tuple(args.detectors) if args.detectors else (*quality.GAN_DETECTORS, *quality.BASELINES)
        quality.run(
            quality.CONFIGS[args.config],
            seeds=args.seeds,
            families=tuple(args.datasets),
            detectors=detectors,
            epochs=args.epochs,
            docs=args.docs,
            command=command,
            log=_log,
        )
    elif args.suite == "speed":
        from benchmarks import speed

        speed.run(docs=args.docs, command=command, log=_log)
    elif args.suite == "defaults":
        from benchmarks import defaults

        defaults.run(docs=args.docs, command=command, log=_log)
    elif args.suite == "image-defaults":
        from benchmarks import image_defaults

        image_defaults.run(docs=args.docs, command=command, log=_log)
    else:
        from benchmarks import speed

        for title in [*quality.rerender(args.docs), *speed.rerender(args.docs)]:
            _log(f"rewrote {title}")


if __name__ == "__main__":
    main()
