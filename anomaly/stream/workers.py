"""``anomaly serve``'s scorers: one in this process, or ``--workers N`` processes in one consumer group.

One Python process scores about as fast as its interpreter turns (decoding, fetching and writing
are Python, the GIL allows one of them at a time), so a machine's other cores sit idle; N scorer
processes in one consumer group share the topics' partitions instead, as N machines would. How:

- each worker is a process of its own (``multiprocessing`` with the *spawn* start method: a fork
  of a process that has threads, or later TensorFlow, is unsafe), running the same loop as a single
  scorer; the parent only supervises (and runs ``--scheduler``'s thread, one per machine);
- worker ``i`` (from 0) has static membership id ``INSTANCE_ID-i`` when ``--instance-id`` is set,
  so each takes its own partitions back at once after a restart; none otherwise;
- worker ``i`` serves its own ``/metrics`` and ``/healthz`` on ``metrics_port + i`` (port 0: a
  free port each, logged). Each worker's health and counters are its own, and a scraper or an
  orchestrator can tell which worker fails; summing them in the parent would need Prometheus'
  multiprocess mode and would hide one sick worker behind healthy ones;
- TensorFlow gets ``cores // N`` threads per worker (at least 1, in its two pools), so N workers
  do not oversubscribe the cores;
- workers load and warm their models, then join the group together (the parent waits for every
  one to be ready): a worker that cannot start (no such model, its port taken) stops all of them
  before any message is consumed, and simultaneous joins form the group in one rebalance;
- SIGTERM/SIGINT to the parent are forwarded to every worker, which finishes its batch in
  flight, commits and closes, as a single scorer does; a worker also gets SIGTERM if the parent
  dies (``PR_SET_PDEATHSIG``), so none is left orphaned;
- a worker that dies (a crash, the kernel's out-of-memory killer) stops the others gracefully and
  the parent exits non-zero naming it. It is not restarted: the process manager (compose's restart
  policy, systemd, Kubernetes) already restarts failed services with back-off and shows it, while
  restarting in here would hide a crash loop behind a healthy-looking parent. Static membership
  makes that restart quick;
- ``--max-messages`` and ``--idle-timeout`` apply per worker: each stops on its own, and the
  parent exits when all have.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from anomaly.errors import AnomalyError, failure_line

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess
    from multiprocessing.synchronize import Event

    from anomaly.stream.consumer import RunSummary, ServeSettings, StreamScorer

log = logging.getLogger(__name__)

# How long the parent waits between looks at its workers' messages and exit codes.
WATCH_S = 0.2


def serve_one(
    settings: ServeSettings,
    database_url: str | None,
    metrics_port: int,
    on_ready: Callable[[StreamScorer], None] | None = None,
) -> RunSummary:
    """One scorer in this process with its ``/metrics`` and ``/healthz``, until stopped.

    ``on_ready`` runs once the models are warm and the port is up, with SIGTERM/SIGINT already
    stopping the scorer gracefully, just before it joins the group.
    """
    from anomaly.store.engine import get_engine
    from anomaly.stream.config import user_errors
    from anomaly.stream.consumer import StreamScorer
    from anomaly.stream.metrics import serve_http

    try:
        scorer = StreamScorer(settings, get_engine(database_url))
    except ValueError as exc:
        raise AnomalyError(str(exc)) from None
    try:
        server = serve_http(scorer.metrics, scorer.health, metrics_port)
    except OSError as exc:
        raise AnomalyError(
            f"cannot serve /metrics and /healthz on port {metrics_port}: {exc.strerror or exc}; "
            "is another scorer running? choose another --metrics-port (0 picks a free one)"
        ) from None
    log.info("metrics on /metrics and /healthz", extra={"fields": {"port": server.server_port}})
    try:
        with user_errors(settings.bootstrap_servers, settings.client), scorer.signals_stop():
            if on_ready is not None:
                on_ready(scorer)
            return scorer.run()
    finally:
        server.shutdown()


def threads_per_worker(workers: int) -> int:
    """This machine's cores (those this process may use) shared out, at least one each."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // workers)


def worker_settings(settings: ServeSettings, index: int) -> ServeSettings:
    """Worker ``index``'s settings: its own static membership id when one is set."""
    if settings.instance_id is None:
        return settings
    return dataclasses.replace(settings, instance_id=f"{settings.instance_id}-{index}")


def worker_ports(metrics_port: int, workers: int) -> list[int]:
    """``metrics_port + i`` for worker ``i``; port 0 lets each pick a free one."""
    if metrics_port == 0:
        return [0] * workers
    last = metrics_port + workers - 1
    if last > 65535:
        raise AnomalyError(
            f"--metrics-port {metrics_port} with --workers {workers} needs ports up to {last}, past 65535; "
            "choose a lower --metrics-port (0 picks free ones)"
        )
    return list(range(metrics_port, metrics_port + workers))


@dataclasses.dataclass
class _Job:
    """What a worker process is given (pickled to it over a pipe: the Kafka client's secrets never reach argv)."""

    index: int
    settings: ServeSettings
    database_url: str | None
    metrics_port: int
    threads: int
    log_format: str


def _worker_logs(log_format: str, index: int) -> None:
    """The parent's log format, each line saying which worker wrote it."""
    from anomaly.stream.logs import use_json_logs

    if log_format == "json":
        use_json_logs()
    else:
        logging.basicConfig(level=logging.INFO, format=f"worker {index}: %(levelname)s %(name)s: %(message)s")

    def tag(record: logging.LogRecord) -> bool:
        record.fields = {"worker": index, **getattr(record, "fields", {})}
        return True

    for handler in logging.getLogger().handlers:
        handler.addFilter(tag)


def _scrubbed(job: _Job, text: str) -> str:
    """``text`` without the worker's secrets (the Kafka client's, the database URL's password)."""
    from anomaly.store.config import scrub, url_secrets
    from anomaly.stream.config import SECRET_KEYS

    secrets = {str(value) for key, value in job.settings.client.items() if key in SECRET_KEYS and value}
    return scrub(text, secrets | (url_secrets(job.database_url) if job.database_url else set()))


def _worker(job: _Job, messages: Any, go: Event) -> None:
    """A worker process: warm up, say ready, wait for the others, score; report how it ended."""
    stopped = threading.Event()

    def early(signum: int, _frame: Any) -> None:
        """A stop before the scorer's own handlers are in place: noted, acted on once they are."""
        stopped.set()
        signal.signal(signum, signal.SIG_DFL)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, early)
    if sys.platform == "linux":
        import ctypes

        # PR_SET_PDEATHSIG: a graceful stop when the parent dies, never an orphaned scorer.
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)
    _worker_logs(job.log_format, job.index)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    # Read by TensorFlow when it starts, which is when the models load: a worker failing before that
    # (no such model) fails in a second instead of after importing TensorFlow.
    for variable in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ[variable] = str(job.threads)

    def ready(scorer: StreamScorer) -> None:
        messages.put(("ready", job.index, None))
        go.wait()
        if stopped.is_set():
            scorer.stop()

    try:
        summary = serve_one(job.settings, job.database_url, job.metrics_port, on_ready=ready)
    except AnomalyError as exc:
        log.error(_scrubbed(job, failure_line(exc)))
        messages.put(("error", job.index, _scrubbed(job, failure_line(exc))))
        sys.exit(2)
    except Exception as exc:  # any crash is this worker's end, reported to the parent in one line
        log.exception("worker failed")
        messages.put(("error", job.index, _scrubbed(job, failure_line(exc))))
        sys.exit(1)
    messages.put(("done", job.index, dataclasses.asdict(summary)))


def supervise(
    settings: ServeSettings, database_url: str | None, metrics_port: int, workers: int, log_format: str
) -> list[dict[str, Any]]:
    """Run ``workers`` scorer processes until each stops; their summaries, in worker order.

    Raises ``AnomalyError`` naming the first worker that failed, once the others have stopped.
    """
    ports = worker_ports(metrics_port, workers)
    threads = threads_per_worker(workers)
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    go = context.Event()
    processes: list[BaseProcess] = []
    for index in range(workers):
        job = _Job(index, worker_settings(settings, index), database_url, ports[index], threads, log_format)
        processes.append(context.Process(target=_worker, args=(job, messages, go), name=f"scorer-{index}"))
        processes[-1].start()
    log.info(
        "scorer workers started",
        extra={"fields": {"workers": workers, "threads_each": threads, "pids": [p.pid for p in processes]}},
    )
    stopping = False

    def stop_all() -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.exitcode is None and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        go.set()  # a worker still waiting for the others goes on, sees its stop, and ends at once

    def forward(signum: int, _frame: Any) -> None:
        """The first SIGTERM/SIGINT stops every worker gracefully; a second is handled the default way."""
        log.info("stopping the workers", extra={"fields": {"signal": signal.Signals(signum).name}})
        signal.signal(signum, previous[signal.Signals(signum)])
        stop_all()

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    ready: set[int] = set()
    summaries: dict[int, dict[str, Any]] = {}
    errors: dict[int, str] = {}

    def read(block: bool) -> None:
        """Take the workers' messages: one wait of WATCH_S when ``block``, then whatever has arrived."""
        while True:
            try:
                kind, index, payload = messages.get(timeout=WATCH_S) if block else messages.get_nowait()
            except queue.Empty:
                return
            block = False
            if kind == "ready":
                ready.add(index)
                if len(ready) == workers:
                    log.info("every worker is warm; joining the group")
                    go.set()
            elif kind == "done":
                summaries[index] = payload
            else:
                errors[index] = payload

    failure: str | None = None
    try:
        while any(p.exitcode is None for p in processes):
            read(block=True)
            read(block=False)  # what a worker sent before it exited is in the pipe by the time it has
            if failure is None:
                failure = _first_failure(processes, summaries, errors, stopping)
                if failure is not None and not stopping:
                    log.error(failure + "; stopping the other workers")
                    stop_all()
        read(block=False)
        failure = failure or _first_failure(processes, summaries, errors, stopping)
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
        for process in processes:
            process.join()
    if failure is not None:
        raise AnomalyError(failure)
    return [summaries[i] for i in range(workers)]


def _first_failure(
    processes: list[BaseProcess], summaries: dict[int, Any], errors: dict[int, str], stopping: bool
) -> str | None:
    """The first worker that reported an error, or ended without its summary (a crash, a kill).

    A worker our own SIGTERM ended before it could install its handlers had consumed nothing: that
    is a clean stop.
    """
    for index, process in enumerate(processes):
        if index in errors:
            return f"scorer worker {index} failed: {errors[index]}"
        code = process.exitcode
        if code is None or index in summaries or (stopping and code == -signal.SIGTERM):
            continue
        reason = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
        return f"scorer worker {index} (pid {process.pid}) {reason}"
    return None


def combined(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The workers' counts added up (seconds: the longest), with each worker's own."""
    total: dict[str, Any] = {key: sum(s[key] for s in summaries) for key in summaries[0] if key != "seconds"}
    return {**total, "seconds": max(s["seconds"] for s in summaries), "workers": summaries}
