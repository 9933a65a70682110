"""The command line the sweeps share: ``python -m experiments.NAME [--docs FILE]``."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.report import RAW, raw_folder, write_raw, write_section
from benchmarks.system import describe_machine


def main(name: str, description: str, run: Callable[[str, Callable[[str], None], Path | None], object]) -> None:
    """Parse ``--docs``, then ``run(command, log, docs)`` with the exact command line, as the raw JSON records it."""
    parser = argparse.ArgumentParser(prog=f"python -m experiments.{name}", description=description.splitlines()[0])
    parser.add_argument("--docs", type=Path, help="also write the markdown into this file (raw JSON beside it)")
    args = parser.parse_args()
    command = shlex.join(["python", "-m", f"experiments.{name}", *sys.argv[1:]])
    run(command, lambda line: print(line, flush=True), args.docs)


def publish(
    name: str, section: str, command: str, rows: object, text: str, docs: Path | None, log: Callable[[str], None]
) -> None:
    """Every sweep's ending: the raw JSON ``name.json`` (beside ``docs`` when given), the section, the log."""
    write_raw(
        name, {"command": command, "machine": describe_machine(), "rows": rows}, raw_folder(docs) if docs else RAW
    )
    if docs:
        write_section(section, text, docs)
    log(text)


def ran(command: str, started: float) -> str:
    """A section's first line: the command, the machine and the minutes since ``started`` (``time.perf_counter``)."""
    return f"Command: `{command}` — {describe_machine()}; {(time.perf_counter() - started) / 60:.1f} min in all."


def about(doc: str) -> str:
    """A sweep module's docstring between its first line and its usage line: what the section measured."""
    return doc.split("\n\n", 1)[1].split("\n\n    python")[0].strip()
