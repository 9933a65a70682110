"""Prometheus metrics of the stream scorer, and the HTTP port that serves them with ``/healthz``.

Each scorer owns a registry of its own (not the process-global default), so several scorers in one
process (the demo, the tests) never collide on metric names.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

BATCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

Health = Callable[[], tuple[bool, dict]]


class StreamMetrics:
    """The counters, histograms and gauges an operator watches the scorer by."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.consumed = Counter("anomaly_stream_messages_consumed", "Messages polled from Kafka", ["topic"], registry=r)
        self.scored = Counter("anomaly_stream_messages_scored", "Messages scored and stored", ["topic"], registry=r)
        self.rejected = Counter(
            "anomaly_stream_messages_rejected", "Messages dead-lettered", ["topic", "kind"], registry=r
        )
        self.anomalies = Counter(
            "anomaly_stream_anomalies", "Scored messages over the threshold", ["topic"], registry=r
        )
        self.retries = Counter(
            "anomaly_stream_retries", "Waits on an unavailable dependency", ["dependency"], registry=r
        )
        self.swaps = Counter("anomaly_stream_model_swaps", "Hot swaps to a newly active version", ["model"], registry=r)
        self.produce_refused = Counter(
            "anomaly_stream_produce_refused",
            "Dead letters and alerts the broker refused past bounded retries",
            ["topic"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            "anomaly_stream_batch_seconds", "Poll-to-commit time of one batch", buckets=BATCH_BUCKETS, registry=r
        )
        self.scoring_seconds = Histogram(
            "anomaly_stream_scoring_seconds",
            "Detector time for one batch",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "anomaly_stream_batch_messages",
            "Messages per batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000),
            registry=r,
        )
        self.lag = Gauge(
            "anomaly_stream_consumer_lag", "Messages behind the partition's end", ["topic", "partition"], registry=r
        )
        self.model_version = Gauge("anomaly_stream_model_version", "Version being served", ["model"], registry=r)
        self.active_version = Gauge(
            "anomaly_stream_model_active_version",
            "Version active in the registry; differs from the served one while it will not load",
            ["model"],
            registry=r,
        )
        self.load_failures = Counter(
            "anomaly_stream_model_load_failures",
            "Versions that failed to load or warm up, so were not served",
            ["model"],
            registry=r,
        )
        self.fallbacks = Counter(
            "anomaly_stream_model_fallbacks",
            "Start-ups serving an older version because the active one would not load",
            ["model"],
            registry=r,
        )


class _Handler(BaseHTTPRequestHandler):
    metrics: StreamMetrics
    health: Health

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?")[0]
        if path == "/metrics":
            self._reply(200, CONTENT_TYPE_LATEST, generate_latest(self.metrics.registry))
        elif path == "/healthz":
            ok, details = self.health()
            self._reply(200 if ok else 503, "application/json", json.dumps({"ok": ok, **details}).encode())
        else:
            self._reply(404, "text/plain", b"not found: try /metrics or /healthz\n")

    def _reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        """Scrapes every few seconds would drown the structured log; stay quiet."""


def serve_http(metrics: StreamMetrics, health: Health, port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Serve ``/metrics`` and ``/healthz`` on a daemon thread; port 0 picks a free one (``server_port``)."""
    handler = type("StreamHandler", (_Handler,), {"metrics": metrics, "health": staticmethod(health)})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server
