"""Writing results into docs/benchmarks.md: each benchmark owns one ``## `` section and replaces it whole."""

from __future__ import annotations

import json
import platform
import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
RAW = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


def machine() -> str:
    import os

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def write_section(title: str, body: str, docs: Path = DOCS) -> None:
    """Replace (or append) the section headed ``## title``, leaving every other section as it is.

    ``docs`` is a parameter so tests can write to a temporary file instead of the committed one.
    """
    text = docs.read_text() if docs.exists() else "# Benchmarks\n\nEvery figure with the command that produced it.\n"
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    docs.write_text(text.rstrip() + "\n")


def write_raw(name: str, data: object, folder: Path = RAW) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
