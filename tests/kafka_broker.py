"""A real Kafka broker for tests: scripts/kafka.sh runs the JVM, kafka-python checks it answers.

    broker = KafkaBroker()
    broker.start()                        # a no-op for the script when the broker already runs
    topic = broker.create_topic(partitions=3)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, ...)

The broker's address, ports and home directory come from the ANOMALY_KAFKA_* variables that
scripts/kafka.sh reads, so tests and the script always agree; ``env`` sets them for a broker of
its own (``KafkaBroker(env={"ANOMALY_KAFKA_HOME": ..., "ANOMALY_KAFKA_SSL_PORT": ...})``).
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "kafka.sh"
# Covers a cold Maven fetch plus the script's own 60 s wait for the port.
SCRIPT_TIMEOUT_S = 300


class KafkaBrokerError(RuntimeError):
    """scripts/kafka.sh failed, or the broker did not answer in time."""


class KafkaBroker:
    """Start, stop and restart the local broker; create isolated topics on it."""

    def __init__(self, script: Path = SCRIPT, ready_timeout_s: float = 60.0, env: dict[str, str] | None = None) -> None:
        self.script = script
        self.ready_timeout_s = ready_timeout_s
        self.env = {**os.environ, **env} if env else None
        self.bootstrap = self._script("bootstrap").strip()
        self.created_topics: list[str] = []

    def _script(self, command: str, *args: str) -> str:
        try:
            done = subprocess.run(
                ["bash", str(self.script), command, *args],
                capture_output=True,
                text=True,
                timeout=SCRIPT_TIMEOUT_S,
                env=self.env,
            )
        except subprocess.TimeoutExpired as exc:
            raise KafkaBrokerError(f"scripts/kafka.sh {command} ran past {SCRIPT_TIMEOUT_S}s") from exc
        if done.returncode != 0:
            raise KafkaBrokerError(
                f"scripts/kafka.sh {command} failed with exit status {done.returncode}:\n"
                f"{done.stdout}{done.stderr}".rstrip()
            )
        return done.stdout

    def is_running(self) -> bool:
        status = subprocess.run(["bash", str(self.script), "status"], capture_output=True, env=self.env)
        return status.returncode == 0

    def start(self) -> None:
        """Start the broker (fetching its jars on first use) and wait until it serves requests."""
        self._script("start")
        self.wait_ready()

    def listener(self, name: str) -> str:
        """The address of the ``sasl`` or ``ssl`` listener (``env`` enables them)."""
        return self._script("bootstrap", name).strip()

    def stop(self) -> None:
        self._script("stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def wait_ready(self, timeout_s: float | None = None) -> None:
        """Wait until an admin client can list topics, i.e. the broker answers metadata requests."""
        deadline = time.monotonic() + (self.ready_timeout_s if timeout_s is None else timeout_s)
        while True:
            try:
                with self.admin(bootstrap_timeout_ms=2000) as admin:
                    admin.list_topics()
                return
            except KafkaError as exc:
                if time.monotonic() >= deadline:
                    raise KafkaBrokerError(f"the broker at {self.bootstrap} is not ready: {exc!r}") from exc
                time.sleep(0.5)

    def admin(self, **config) -> KafkaAdminClient:
        """A new admin client on the broker; close it (it is a context manager)."""
        return KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="tests-kafka-broker", **config)

    def create_topic(
        self, partitions: int = 3, prefix: str = "test", name: str | None = None, configs: dict[str, str] | None = None
    ) -> str:
        """Create a topic (uniquely named unless ``name`` is given) and wait until every partition has a leader."""
        name = name or f"{prefix}-{uuid.uuid4().hex[:12]}"
        with self.admin() as admin:
            admin.create_topics(
                {name: {"num_partitions": partitions, "replication_factor": 1, "configs": configs or {}}},
                wait_for_metadata=True,
            )
        self.created_topics.append(name)
        return name

    def delete_created_topics(self) -> None:
        if not self.created_topics:
            return
        with self.admin() as admin:
            admin.delete_topics(self.created_topics)
        self.created_topics.clear()
