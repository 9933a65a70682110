"""Bulk event inserts per second into the store, on SQLite and PostgreSQL.

    python -m benchmarks.store_inserts [--batches 50] [--batch-size 1000] [--no-postgres]

Writes ``--batches`` batches of scored events shaped like the detector's output (score, threshold,
the named score components ``reconstruction``/``discriminator``/``latent``, one in twenty an
anomaly) through ``insert_events``, each batch its own transaction, into a fresh database migrated
to head; then writes the same batches again to time the replay path (every row a duplicate, none
stored). A second row per database adds a 38-channel list of per-channel errors to the components,
to show what heavier JSON costs. PostgreSQL is the loopback server of scripts/postgres.sh, in a
throwaway database. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from anomaly.store import migrate
from anomaly.store.engine import create_engine_for
from anomaly.store.queries import insert_events
from tests.scratch import postgres_script, scratch_database


def make_batches(batches: int, size: int, channels: int, seed: int = 0) -> list[list[dict[str, Any]]]:
    """Scored events; ``channels`` > 0 adds that many per-channel errors to the components."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 26, tzinfo=timezone.utc)
    out = []
    for b in range(batches):
        batch = []
        for i in range(size):
            offset = b * size + i
            score = rng.random()
            components: dict[str, Any] = {
                "reconstruction": score * 0.6,
                "discriminator": score * 0.3,
                "latent": score * 0.1,
            }
            if channels:
                components["per_channel"] = [round(rng.random(), 4) for _ in range(channels)]
            batch.append(
                {
                    "topic": "readings",
                    "partition": offset % 3,
                    "offset": offset,
                    "key": f"machine-{offset % 28}",
                    "source": f"machine-{offset % 28}",
                    "event_time": start + timedelta(milliseconds=offset),
                    "model_id": None,
                    "score": score,
                    "threshold": 0.95,
                    "components": components,
                    "is_anomaly": score > 0.95,
                }
            )
        out.append(batch)
    return out


def measure(url: str, batches: list[list[dict[str, Any]]]) -> dict[str, float]:
    """Rates (events/s) for new rows and for a full replay of the same batches."""
    migrate.upgrade(url=url)
    engine = create_engine_for(url)
    try:
        total = sum(len(b) for b in batches)
        started = time.perf_counter()
        stored = sum(insert_events(engine, batch) for batch in batches)
        new_seconds = time.perf_counter() - started
        started = time.perf_counter()
        replayed = sum(insert_events(engine, batch) for batch in batches)
        replay_seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    assert stored == total and replayed == 0, (stored, replayed)
    return {"events": total, "new": total / new_seconds, "replay": total / replay_seconds}


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite:///{Path(folder) / 'bench.db'}"


@contextmanager
def postgres_database() -> Iterator[str]:
    started = postgres_script("start")
    if started.returncode != 0:
        raise SystemExit(f"PostgreSQL did not start: {started.stderr.strip()}")
    with scratch_database(postgres_script("url").stdout.strip(), prefix="anomaly_bench") as url:
        yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--no-postgres", action="store_true", help="Only measure SQLite.")
    args = parser.parse_args()

    targets = [("SQLite (WAL, file)", sqlite_database)]
    if not args.no_postgres:
        targets.append(("PostgreSQL 15 (loopback)", postgres_database))
    print(f"{args.batches} batches x {args.batch_size} events, one transaction per batch\n")
    print("| database | components | events | new events/s | replayed events/s (all duplicates) |")
    print("|---|---|---:|---:|---:|")
    for channels, shape in [(0, "3 floats"), (38, "3 floats + 38-channel list")]:
        batches = make_batches(args.batches, args.batch_size, channels)
        for label, database in targets:
            with database() as url:
                rates = measure(url, batches)
            print(
                f"| {label} | {shape} | {rates['events']:,} | {rates['new']:,.0f} | {rates['replay']:,.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
