"""Writing results into docs/benchmarks.md: each benchmark owns one section and replaces it whole.

The file keeps current results first and superseded runs under a ``## History`` heading, as ``###``
sections: a section is rewritten in place at whichever of the two levels it sits, and a new one is
added above the history, so a rerun never moves current figures below old ones.
"""

from __future__ import annotations

import json
import os
import platform
import re
from collections.abc import Callable
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
RAW = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"
HISTORY = "## History\n"


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def write_section(title: str, body: str, docs: Path = DOCS) -> None:
    """Replace (or add) the section headed ``## title`` or ``### title``, leaving every other section as it is.

    ``docs`` is a parameter so tests can write to a temporary file instead of the committed one.
    """
    text = docs.read_text() if docs.exists() else "# Benchmarks\n\nEvery figure with the command that produced it.\n"
    pattern = re.compile(rf"^(#{{2,3}}) {re.escape(title)}\n.*?(?=^#{{2,3}} |\Z)", re.S | re.M)
    found = pattern.search(text)
    level = found.group(1) if found else "##"
    section = f"{level} {title}\n\n{body.strip()}\n\n"
    if found:
        text = text[: found.start()] + section + text[found.end() :]
    elif HISTORY in text:
        at = text.index(HISTORY)
        text = text[:at] + section + text[at:]
    else:
        text = text.rstrip() + "\n\n" + section
    docs.write_text(text.rstrip() + "\n")


def raw_folder(docs: Path) -> Path:
    """Raw JSON lives in the folder named after the docs file: docs/benchmarks.md → docs/benchmarks/."""
    return docs.with_suffix("")


def write_raw(name: str, data: object, folder: Path = RAW) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def read_raw(name: str, docs: Path) -> dict | None:
    """The raw figures a suite last wrote beside ``docs``, or None when it never ran there."""
    path = raw_folder(docs) / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def rerender(name: str, title: str, render: Callable[[dict], str], docs: Path) -> list[str]:
    """Rewrite section ``title`` from the raw JSON ``name`` beside ``docs``, measuring nothing (none: no title)."""
    results = read_raw(name, docs)
    if results is None:
        return []
    write_section(title, render(results), docs)
    return [title]


def table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
