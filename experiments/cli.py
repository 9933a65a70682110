"""The command line the sweeps share: ``python -m experiments.NAME [--docs FILE]``."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from pathlib import Path


def main(name: str, description: str, run: Callable[[str, Callable[[str], None], Path | None], object]) -> None:
    """Parse ``--docs``, then ``run(command, log, docs)`` with the exact command line, as the raw JSON records it."""
    parser = argparse.ArgumentParser(prog=f"python -m experiments.{name}", description=description.splitlines()[0])
    parser.add_argument("--docs", type=Path, help="also write the markdown into this file (raw JSON beside it)")
    args = parser.parse_args()
    command = shlex.join(["python", "-m", f"experiments.{name}", *sys.argv[1:]])
    run(command, lambda line: print(line, flush=True), args.docs)
