"""The scoring loop: poll a batch → decode → score as one batch → store in one transaction → commit.

Exactly one stored row per message comes from at-least-once delivery plus the idempotent store:

- offsets are committed only after the batch's events and rejections are stored in one transaction
  and its dead letters and alerts are acknowledged by the broker; the committed offset is the last
  stored offset + 1 (Kafka's "next message to read");
- a crash anywhere before the commit replays the batch, and ``insert_events`` skips rows already
  stored (unique on topic, partition, offset);
- on partition revocation, whatever was stored but not yet committed is committed with a
  non-blocking ``commit_async``: kafka-python 3.x runs rebalance callbacks on the I/O loop that also
  sends heartbeats, so the callback never touches the database or waits; a batch whose partitions
  are revoked while it is being written is committed once written;
- a group join is waited out before the loop goes on (kafka-python 3.0.12 loses a join that
  completes between two polls);
- while the database or the broker is unavailable the loop waits and retries the same batch, keeping
  its group membership by polling with every partition paused; nothing unstored is committed;
- a message is never able to stop the stream: any error decoding or scoring it dead-letters it with
  the error as the reason, and a batch the database refuses for its content (not an outage) is
  split in halves until the rows at fault are found, which become rejections (or, if even that
  fails, a bare rejection by offset with the message's head);
- SIGTERM/SIGINT (``stop()``) let the current batch finish, commit, and close.

One batch's scoring time is kept well below ``max_poll_interval_ms`` (past it the group evicts the
consumer): the batch size adapts to the measured seconds per message, so a slow detector (AnoGAN's
latent search) gets small batches and a fast one large batches.
"""

from __future__ import annotations

import logging
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError
from kafka.structs import OffsetAndMetadata
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError, StatementError

from anomaly.store.queries import append_rejection_reason, insert_events, insert_rejections
from anomaly.stream.alerts import DEFAULT_ALERTS_TOPIC, alert
from anomaly.stream.deadletter import dead_letter, dlq_topic, rejection_row, safe_text
from anomaly.stream.decode import MAX_MESSAGE_BYTES, Decoded, Message, Picture, Reading, Rejected, decoders
from anomaly.stream.metrics import StreamMetrics
from anomaly.stream.models import ModelWatcher, Scored
from anomaly.stream.publish import Outgoing, Publisher

Position = tuple[str, int, int]

log = logging.getLogger(__name__)

# Share of max_poll_interval_ms one batch's scoring may use: leaves room for the write and retries.
POLL_BUDGET_SHARE = 0.2
FIRST_BATCH = 64
# One wait on a pending group join; the waits follow each other with no work between (see _complete_join).
JOIN_WAIT_MS = 1000


@dataclass
class ServeSettings:
    """Everything ``anomaly serve`` is told; ``models`` maps each topic to a registered model name.

    ``health_timeout_s`` is how long the broker may go without a heartbeat, fetches may bring nothing
    while messages are known to wait, or produces may keep failing, before ``/healthz`` says 503.
    """

    topics: list[str]
    models: dict[str, str]
    bootstrap_servers: str | list[str]
    group: str = "anomaly-serve"
    instance_id: str | None = None
    client: dict[str, Any] = field(default_factory=dict)
    decoders: dict[str, str] = field(default_factory=dict)
    alerts_topic: str | None = DEFAULT_ALERTS_TOPIC
    sources: frozenset[str] | None = None
    max_batch: int = 2000
    max_poll_interval_ms: int = 300_000
    poll_timeout_ms: int = 500
    model_check_s: float = 5.0
    max_messages: int | None = None
    idle_timeout_s: float | None = None
    store_payload: bool = True
    max_bytes: int = MAX_MESSAGE_BYTES
    retry_max_s: float = 5.0
    health_timeout_s: float = 30.0


@dataclass
class RunSummary:
    """Counts of one ``run()``, for the CLI's last line and the demo's summary."""

    consumed: int = 0
    scored: int = 0
    rejected: int = 0
    anomalies: int = 0
    batches: int = 0
    seconds: float = 0.0


@dataclass
class _InFlight:
    future: Future
    batch: _Batch
    messages: list[Message]
    started: float


@dataclass
class _Batch:
    events: list[dict[str, Any]] = field(default_factory=list)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    outgoing: list[Outgoing] = field(default_factory=list)
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    anomalies: dict[str, int] = field(default_factory=dict)
    messages: dict[Position, Message] = field(default_factory=dict)


class _Rebalance(ConsumerRebalanceListener):
    """Forwards kafka-python's callbacks; they run on its I/O loop and must return promptly."""

    def __init__(self, scorer: StreamScorer) -> None:
        self.scorer = scorer

    def on_partitions_revoked(self, revoked) -> None:
        self.scorer._on_revoked(set(revoked))

    def on_partitions_assigned(self, assigned) -> None:
        self.scorer._on_assigned(set(assigned))


class StreamScorer:
    """One consumer in a group, scoring its partitions into the store until stopped."""

    def __init__(self, settings: ServeSettings, engine: Engine, metrics: StreamMetrics | None = None) -> None:
        missing = [t for t in settings.topics if t not in settings.models]
        if missing:
            raise ValueError(f"no model named for topic(s) {missing}")
        self.settings = settings
        self.engine = engine
        self.metrics = metrics or StreamMetrics()
        self.models = ModelWatcher(
            list(settings.models.values()), engine, settings.model_check_s, settings.max_batch, metrics=self.metrics
        )
        registry = decoders()
        self._decoders = {}
        for topic in settings.topics:
            model = self.models[settings.models[topic]]
            info = registry.get(settings.decoders.get(topic) or registry.default_for(model.spec))
            if info.modality != model.modality:
                raise ValueError(
                    f"decoder for {topic} feeds {info.modality} models, but {model.name} is {model.modality}"
                )
            self._decoders[topic] = info.decode
        self.summary = RunSummary()
        self._stop = False
        self._done: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._lag_labels: set[TopicPartition] = set()
        self._seconds_per_message: float | None = None
        self._waiting_on: str | None = None
        self._waiting_error: str | None = None
        self._last_loop = time.monotonic()
        self._last_progress = time.monotonic()
        self._waiting_messages = 0
        self._heartbeat_age: float | None = None
        self._watched_at = 0.0
        self._joining_since: float | None = time.monotonic()
        self.consumer: KafkaConsumer | None = None
        self.publisher: Publisher | None = None
        for model in self.models.models.values():
            self.metrics.model_version.labels(model.name).set(model.version)

    # ---- control -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the current batch, commit, close: safe to call from a signal handler or thread."""
        self._stop = True

    @contextmanager
    def signals_stop(self) -> Iterator[None]:
        """SIGTERM and SIGINT stop the loop gracefully; a second one is handled the default way."""

        def handler(signum: int, _frame: Any) -> None:
            log.info("stopping after this batch", extra={"fields": {"signal": signal.Signals(signum).name}})
            self.stop()
            signal.signal(signum, previous[signal.Signals(signum)])

        previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for signum, old in previous.items():
                signal.signal(signum, old)

    def health(self) -> tuple[bool, dict]:
        """For /healthz: healthy unless a dependency or the loop is failing; each failure is a reason.

        Called from the HTTP thread, so it only reads what the loop and the writer record.
        """
        now, limit = time.monotonic(), max(60.0, self.settings.max_poll_interval_ms / 1000)
        patience = self.settings.health_timeout_s
        stalled = now - self._last_loop > limit
        # A group join legitimately lasts until every member rejoins, at most max_poll_interval_ms.
        # Read once: the loop's thread may end the join meanwhile.
        joining_since = self._joining_since
        joining_for = 0.0 if joining_since is None else now - joining_since
        stuck_joining = joining_for > limit
        reasons = []
        if self._waiting_on is not None:
            reasons.append(f"the {self._waiting_on} is unavailable: {self._waiting_error}")
        if stalled:
            reasons.append(f"the scoring loop has not turned for {now - self._last_loop:.0f} s")
        if stuck_joining:
            reasons.append(f"the consumer group join has lasted {joining_for:.0f} s")
        if self._heartbeat_age is not None and self._heartbeat_age > patience:
            reasons.append(f"no heartbeat reached the group coordinator for {self._heartbeat_age:.0f} s")
        if self._waiting_messages and now - self._last_progress > patience:
            reasons.append(
                f"no messages fetched for {now - self._last_progress:.0f} s while {self._waiting_messages} wait"
            )
        if self.publisher is not None and self.publisher.failing_for() > patience:
            reasons.append(
                f"producing dead letters and alerts has failed for {self.publisher.failing_for():.0f} s: "
                f"{self.publisher.last_error}"
            )
        registry_error = self.models.registry_error
        if registry_error is not None:
            reasons.append(f"the model registry is unreachable: {registry_error}")
        details = {
            "reasons": reasons,
            "waiting_on": self._waiting_on,
            "stalled": stalled,
            "joining_group": joining_since is not None,
            "stuck_joining": stuck_joining,
            "waiting_messages": self._waiting_messages,
            "consumed": self.summary.consumed,
            "models": {m.name: m.version for m in self.models.models.values()},
        }
        return not reasons, details

    # ---- the loop ----------------------------------------------------------------------------

    @property
    def _kafka(self) -> KafkaConsumer:
        """The consumer, which run() opens: everything below runs inside run()."""
        if self.consumer is None:
            raise RuntimeError("the scorer is not running: run() opens its consumer")
        return self.consumer

    @property
    def _publisher(self) -> Publisher:
        """The producer of dead letters and alerts, which run() opens beside the consumer."""
        if self.publisher is None:
            raise RuntimeError("the scorer is not running: run() opens its publisher")
        return self.publisher

    def run(self) -> RunSummary:
        """Consume until stopped; batch k is written while batch k+1 is decoded and scored.

        The write (database, then dead letters and alerts) runs on one writer thread, one batch
        deep; its offsets are committed from this thread once it is done, before the next batch is
        handed over. So a commit still follows its batch's write, and at most one batch is in flight.
        """
        s = self.settings
        self.consumer = KafkaConsumer(
            bootstrap_servers=s.bootstrap_servers,
            group_id=s.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_interval_ms=s.max_poll_interval_ms,
            group_instance_id=s.instance_id,
            **s.client,
        )
        # Topic metadata before the first join, so that join already assigns the partitions: when
        # metadata arrives mid-join instead, kafka-python 3.0.12 rejoins, and if a poll times out
        # between that rejoin's assignment and its SyncGroup reply, it drops the reply and stays in
        # the group with no partitions and no heartbeat (seen in CI; health then reports stuck_joining).
        for topic in s.topics:
            if not self.consumer.partitions_for_topic(topic):
                log.warning("topic has no partitions yet", extra={"fields": {"topic": topic}})
        self.consumer.subscribe(s.topics, listener=_Rebalance(self))
        self.publisher = Publisher(s.bootstrap_servers, **s.client)
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stream-writer")
        started = time.perf_counter()
        idle_since = time.monotonic()
        polled_count = 0
        in_flight: _InFlight | None = None
        log.info("consuming", extra={"fields": {"topics": s.topics, "group": s.group}})
        try:
            while not self._stop:
                self._last_loop = time.monotonic()
                if s.max_messages is not None and polled_count >= s.max_messages:
                    break
                for model in self.models.refresh():
                    self.metrics.swaps.labels(model.name).inc()
                    self.metrics.model_version.labels(model.name).set(model.version)
                polled = self._poll(s.poll_timeout_ms, self._batch_limit())
                self._watch_broker(bool(polled))
                if not polled:
                    if in_flight is not None:
                        done, in_flight = self._finish(in_flight), None
                        if not done:
                            break
                    if s.idle_timeout_s is not None and time.monotonic() - idle_since > s.idle_timeout_s:
                        log.info("idle; stopping", extra={"fields": {"idle_s": s.idle_timeout_s}})
                        break
                    continue
                idle_since = time.monotonic()
                messages = [Message.of(r) for tp in sorted(polled) for r in polled[tp]]
                polled_count += len(messages)
                clock = time.perf_counter()
                for topic, count in Counter(m.topic for m in messages).items():
                    self.metrics.consumed.labels(topic).inc(count)
                batch = self._build(messages)
                if in_flight is not None:
                    done, in_flight = self._finish(in_flight), None
                    if not done:
                        break
                in_flight = _InFlight(writer.submit(self._persist, batch), batch, messages, clock)
            if in_flight is not None:
                self._finish(in_flight)  # a graceful stop still writes and commits the batch in flight
        finally:
            self._stop = True  # a writer still retrying gives up: its batch stays uncommitted
            writer.shutdown(wait=True)
            self.summary.seconds = time.perf_counter() - started
            self._close()
        return self.summary

    def _poll(self, timeout_ms: int, max_records: int) -> dict:
        """``consumer.poll`` with a group join driven to its end before and after it."""
        self._complete_join()
        polled = self._kafka.poll(timeout_ms=timeout_ms, max_records=max_records)
        self._complete_join()
        return polled

    def _complete_join(self) -> None:
        """Wait out a pending group (re)join in back-to-back waits, checking the stop flag between them.

        kafka-python 3.0.12 leaves a join that outlives a poll running on its I/O thread, but when it
        completes before the next poll, that poll discards the assignment and sends a fresh JoinGroup;
        from the group's leader that starts another rebalance. A loop with gaps between polls (a write
        in flight, model refreshes) could go on rejoining without holding its partitions: in CI one
        worker of two still held its first assignment while the other had been given half. Waits with
        no work between them leave no gap for the join to finish in. A coordinator that cannot be
        reached ends the wait, so the loop goes back to its outage handling.
        """
        coordinator = self._kafka._coordinator
        while coordinator.need_rejoin() and not self._stop:
            self._last_loop = time.monotonic()
            if not coordinator.ensure_coordinator_ready(timeout_ms=JOIN_WAIT_MS):
                return
            coordinator.ensure_active_group(timeout_ms=JOIN_WAIT_MS)

    def _persist(self, batch: _Batch) -> bool:
        """On the writer thread: store, then produce dead letters and alerts; False if stopped first.

        A record the broker refuses outright (past bounded retries) is not allowed to hold up the
        partition: a dead letter's refusal is noted on its stored rejection, an alert's is logged
        and counted (its event is stored).
        """
        refused: list[tuple[Outgoing, str]] = []
        if not self._store(batch):
            return False
        if not self._publisher.send_all(
            batch.outgoing,
            keep_going=lambda: not self._stop,
            give_up=lambda record, error: refused.append((record, error)),
        ):
            return False
        for record, _ in refused:
            self.metrics.produce_refused.labels(record.topic).inc()
        notes = [
            (record.origin, f"dead letter to {record.topic} refused: {error}")
            for record, error in refused
            if record.origin and record.topic == dlq_topic(record.origin[0])
        ]
        return not notes or self._with_database(lambda: self._note_refusals(notes))

    def _note_refusals(self, notes: list[tuple[Position, str]]) -> None:
        with self.engine.begin() as connection:
            for origin, note in notes:
                append_rejection_reason(connection, *origin, safe_text(note))

    def _finish(self, flight: _InFlight) -> bool:
        """Wait for the batch's write, staying in the group meanwhile; then commit its offsets."""
        while True:
            try:
                written = flight.future.result(timeout=1.0)
                break
            except FutureTimeout:
                self._keep_membership()
        self._resume()
        if not written:
            return False
        owned = self._kafka.assignment()
        self._done.update({tp: offset for tp, offset in flight.batch.next_offsets.items() if tp in owned})
        if not self._commit(flight.batch.next_offsets):
            return False
        self._count(flight.messages, flight.batch)
        self.metrics.batch_seconds.observe(time.perf_counter() - flight.started)
        self.metrics.batch_size.observe(len(flight.messages))
        self._update_lag()
        return True

    def _build(self, messages: list[Message]) -> _Batch:
        batch = _Batch()
        by_model: dict[str, list[tuple[Message, Decoded]]] = {}
        contexts = {
            name: model.context(self.settings.sources, self.settings.max_bytes)
            for name, model in self.models.models.items()
        }
        for message in messages:
            tp = TopicPartition(message.topic, message.partition)
            batch.next_offsets[tp] = max(batch.next_offsets.get(tp, 0), message.offset + 1)
            name = self.settings.models[message.topic]
            batch.messages[(message.topic, message.partition, message.offset)] = message
            try:
                item = self._decoders[message.topic](message, contexts[name])
            except Rejected as rejection:
                self._reject(batch, message, rejection)
                continue
            except Exception as exc:  # noqa: BLE001 — a decoder's bug on one message must not stop the stream
                self._reject(batch, message, Rejected(f"decoding failed: {type(exc).__name__}: {exc}", "error"))
                continue
            by_model.setdefault(name, []).append((message, item))
        for name, pairs in by_model.items():
            model = self.models[name]
            clock = time.perf_counter()
            results = model.score([item for _, item in pairs])
            elapsed = time.perf_counter() - clock
            self.metrics.scoring_seconds.labels(name).observe(elapsed)
            self._learn_speed(elapsed, len(pairs))
            for (message, item), result in zip(pairs, results):
                if isinstance(result, Rejected):
                    self._reject(batch, message, result)
                else:
                    self._event(batch, message, item, result, model)
        return batch

    def _reject(self, batch: _Batch, message: Message, rejection: Rejected) -> None:
        batch.rejections.append(rejection_row(message, rejection))
        batch.outgoing.append(dead_letter(message, rejection))
        self.metrics.rejected.labels(message.topic, rejection.kind).inc()
        log.info(
            "rejected",
            extra={
                "fields": {
                    "topic": message.topic,
                    "partition": message.partition,
                    "offset": message.offset,
                    "reason": rejection.reason,
                }
            },
        )

    def _event(self, batch: _Batch, message: Message, item: Decoded, scored: Scored, model) -> None:
        payload: bytes | None
        if isinstance(item, Picture):
            payload, content_type = item.payload, item.content_type
        else:
            payload, content_type = message.value, "application/json"
        source = item.source if isinstance(item, (Reading, Picture)) else None
        batch.events.append(
            {
                "topic": message.topic,
                "partition": message.partition,
                "offset": message.offset,
                "key": message.key_text,
                "source": source,
                "event_time": item.event_time,
                "model_id": model.model_id,
                "score": scored.score,
                "threshold": scored.threshold,
                "components": scored.components,
                "is_anomaly": scored.is_anomaly,
                "payload": payload if self.settings.store_payload else None,
                "payload_content_type": content_type if self.settings.store_payload else None,
            }
        )
        if scored.is_anomaly:
            batch.anomalies[message.topic] = batch.anomalies.get(message.topic, 0) + 1
            if self.settings.alerts_topic:
                batch.outgoing.append(
                    alert(message, source, item.event_time, scored, model, self.settings.alerts_topic)
                )

    def _count(self, messages: list[Message], batch: _Batch) -> None:
        self.summary.batches += 1
        self.summary.consumed += len(messages)
        self.summary.scored += len(batch.events)
        self.summary.rejected += len(batch.rejections)
        self.summary.anomalies += sum(batch.anomalies.values())
        for topic, count in Counter(row["topic"] for row in batch.events).items():
            self.metrics.scored.labels(topic).inc(count)
        for topic, count in batch.anomalies.items():
            self.metrics.anomalies.labels(topic).inc(count)

    # ---- batch size --------------------------------------------------------------------------

    def _learn_speed(self, seconds: float, count: int) -> None:
        per_message = seconds / max(count, 1)
        previous = self._seconds_per_message
        self._seconds_per_message = per_message if previous is None else 0.7 * previous + 0.3 * per_message

    def _batch_limit(self) -> int:
        """At most what scores in a fifth of max_poll_interval_ms at the speed measured so far."""
        if self._seconds_per_message is None:
            return min(self.settings.max_batch, FIRST_BATCH)
        budget_s = self.settings.max_poll_interval_ms / 1000 * POLL_BUDGET_SHARE
        return max(1, min(self.settings.max_batch, int(budget_s / max(self._seconds_per_message, 1e-6))))

    # ---- dependencies: database, broker ------------------------------------------------------

    def _store(self, batch: _Batch) -> bool:
        """Events and rejections in one transaction, retried until stored; False if stopped first.

        When the database refuses the batch for what it holds (and is up), the rows at fault are
        found by halving and the rest stored around them.
        """

        def write() -> None:
            try:
                self._write(batch.events, batch.rejections)
            except Exception as exc:  # noqa: BLE001 — told apart from an outage by _database_down
                if self._database_down(exc):
                    raise
                self._store_around(batch)

        return self._with_database(write)

    def _with_database(self, work: Callable[[], None]) -> bool:
        """Run ``work`` until the database lets it finish, waiting out outages; False if stopped first."""
        delay = 0.2
        while True:
            try:
                work()
                self._recovered("database")
                return True
            except (OperationalError, InterfaceError) as exc:
                self._unavailable("database", exc)
                deadline = time.monotonic() + delay
                while time.monotonic() < deadline:
                    if self._stop:
                        return False
                    time.sleep(0.05)
                delay = min(delay * 2, self.settings.retry_max_s)

    def _write(self, events: list[dict[str, Any]], rejections: list[dict[str, Any]]) -> None:
        with self.engine.begin() as connection:
            insert_events(connection, events)
            insert_rejections(connection, rejections)

    def _database_down(self, exc: Exception) -> bool:
        """Whether ``exc`` is the database being unreachable (wait and retry) rather than a row it refuses.

        Connection errors are also raised for some content (PostgreSQL's "program limit exceeded"
        is an OperationalError), so a connection error counts as an outage only if a trivial query
        fails too.
        """
        if not isinstance(exc, (OperationalError, InterfaceError)):
            return False
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except (OperationalError, InterfaceError):
            return True
        return False

    def _refused_rows(
        self, rows: list[dict[str, Any]], store: Callable[[list[dict[str, Any]]], None]
    ) -> list[tuple[dict[str, Any], Exception]]:
        """Store ``rows`` in halves until each row the database refuses stands alone; those, with the error."""
        try:
            store(rows)
            return []
        except Exception as exc:  # noqa: BLE001 — any refusal of content is isolated, outages re-raised
            if self._database_down(exc):
                raise
            if len(rows) == 1:
                return [(rows[0], exc)]
            middle = len(rows) // 2
            return self._refused_rows(rows[:middle], store) + self._refused_rows(rows[middle:], store)

    def _store_around(self, batch: _Batch) -> None:
        """Store what the database accepts; an event it refuses becomes a rejection (dead letter
        instead of alert), and a rejection it refuses is stored bare: offset, error class and head."""
        refused_events = self._refused_rows(batch.events, lambda rows: self._write(rows, []))
        for row, exc in refused_events:
            position = (row["topic"], row["partition"], row["offset"])
            batch.events.remove(row)
            batch.outgoing = [record for record in batch.outgoing if record.origin != position]
            if row["is_anomaly"]:
                batch.anomalies[row["topic"]] -= 1
            self._reject(
                batch, batch.messages[position], Rejected(f"the store refused the scored event: {_cause(exc)}", "store")
            )
            log.error(
                "event refused by the store; dead-lettered",
                extra={
                    "fields": {
                        "topic": position[0],
                        "partition": position[1],
                        "offset": position[2],
                        "error": type(exc).__name__,
                    }
                },
            )
        refused_rejections = self._refused_rows(batch.rejections, lambda rows: self._write([], rows))
        for row, exc in refused_rejections:
            bare = {
                "topic": row["topic"],
                "partition": row["partition"],
                "offset": row["offset"],
                "reason": f"rejected; the store refused the full reason ({type(exc).__name__})",
                "raw_head": row.get("raw_head"),
            }
            batch.rejections[batch.rejections.index(row)] = bare
            try:
                self._write([], [bare])
            except Exception as bare_exc:  # noqa: BLE001 — the dead letter still carries the message
                if self._database_down(bare_exc):
                    raise
                log.error(
                    "rejection refused by the store even bare; only its dead letter keeps it",
                    extra={
                        "fields": {
                            "topic": row["topic"],
                            "partition": row["partition"],
                            "offset": row["offset"],
                            "error": type(bare_exc).__name__,
                        }
                    },
                )

    def _commit(self, offsets: dict[TopicPartition, int]) -> bool:
        """Commit a stored batch's offsets; retried through broker outages.

        A partition revoked while its batch was being written is committed too: the broker takes a
        commit from any member of the current generation, and without it the new owner replays the
        batch, or leaves it uncommitted if it stops first. If that owner has already committed
        further, this moves its offset back by at most the batch, which it replays into rows the
        store skips.
        """
        delay = 0.2
        while True:
            todo = {
                tp: OffsetAndMetadata(offset, "", -1)
                for tp, offset in offsets.items()
                if self._committed.get(tp) != offset
            }
            if not todo:
                return True
            try:
                self._kafka.commit(todo)
                owned = self._kafka.assignment()
                self._committed.update({tp: meta.offset for tp, meta in todo.items() if tp in owned})
                self._recovered("broker")
                return True
            except CommitFailedError as exc:
                log.warning(
                    "commit refused after a rebalance; the partitions' new owner replays from the last "
                    "commit and the store skips rows it already has",
                    extra={"fields": {"error": str(exc)}},
                )
                return True
            except RebalanceInProgressError:
                # kafka-python commits nothing while its group rejoins: poll (paused) until the join is
                # done, then commit in the new generation. A stopping scorer does not wait for it: the
                # rebalance can last until the coordinator drops a member that stopped without leaving.
                if self._stop:
                    log.warning(
                        "commit left behind: the group was rebalancing when the scorer stopped; the "
                        "partitions' next owner replays the batch and the store skips rows it already has"
                    )
                    return False
                self._keep_membership()
                self._resume()
            except KafkaError as exc:
                self._unavailable("broker", exc)
                if self._stop:
                    return False
                time.sleep(delay)
                delay = min(delay * 2, self.settings.retry_max_s)

    def _unavailable(self, dependency: str, exc: Exception) -> None:
        self.metrics.retries.labels(dependency).inc()
        error = (str(exc).splitlines() or [type(exc).__name__])[0]
        if self._waiting_on != dependency:
            log.warning(
                f"{dependency} unavailable; waiting and retrying",
                extra={"fields": {"dependency": dependency, "error": error}},
            )
        self._waiting_on = dependency
        self._waiting_error = error

    def _recovered(self, dependency: str) -> None:
        if self._waiting_on == dependency:
            log.info(f"{dependency} back", extra={"fields": {"dependency": dependency}})
            self._waiting_on = None
            self._waiting_error = None

    def _watch_broker(self, fetched: bool) -> None:
        """After each poll: note progress, messages known to wait (the broker's last reported end of
        each partition past what was scored) and the coordinator heartbeat's age, for ``health``.

        Progress means records came back, or nothing is known to wait (an idle stream is healthy).
        """
        now = time.monotonic()
        if fetched or now - self._watched_at >= 1.0:
            self._watched_at = now
            waiting = 0
            for tp in self._kafka.assignment():
                end, done = self._kafka.highwater(tp), self._done.get(tp)
                if end is not None and done is not None:
                    waiting += max(0, end - done)
            self._waiting_messages = waiting
            # The coordinator's last heartbeat reply, read off kafka-python's heartbeat state: its public
            # "last-heartbeat-seconds-ago" metric subtracts a monotonic time from a wall-clock one.
            heartbeat = self._kafka._coordinator.heartbeat
            joined = self._joining_since is None
            self._heartbeat_age = now - max(heartbeat.last_receive, heartbeat.last_reset) if joined else None
        if fetched or not self._waiting_messages:
            self._last_progress = now

    def _keep_membership(self) -> None:
        """While a write waits on a dependency: poll with every partition paused, unreading anything returned."""
        self._last_loop = time.monotonic()
        self._kafka.pause(*self._kafka.assignment())
        for tp, records in self._poll(100, self._kafka.config["max_poll_records"]).items():
            self._kafka.seek(tp, records[0].offset)
            self._kafka.pause(tp)

    def _resume(self) -> None:
        paused = self._kafka.paused()
        if paused:
            self._kafka.resume(*paused)

    # ---- rebalance callbacks (on kafka-python's I/O loop: no database, no waiting) -----------

    def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        self._joining_since = time.monotonic()
        pending = {
            tp: OffsetAndMetadata(self._done[tp], "", -1)
            for tp in revoked
            if tp in self._done and self._committed.get(tp) != self._done[tp]
        }
        if pending:
            self._kafka.commit_async(pending)
        for tp in revoked:
            self._done.pop(tp, None)
            self._committed.pop(tp, None)
            if tp in self._lag_labels:
                self._lag_labels.discard(tp)
                self.metrics.lag.remove(tp.topic, str(tp.partition))
        log.info(
            "partitions revoked",
            extra={
                "fields": {
                    "partitions": sorted(f"{tp.topic}-{tp.partition}" for tp in revoked),
                    "committed_on_revoke": len(pending),
                }
            },
        )

    def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        self._joining_since = None
        log.info(
            "partitions assigned",
            extra={"fields": {"partitions": sorted(f"{tp.topic}-{tp.partition}" for tp in assigned)}},
        )

    def _update_lag(self) -> None:
        for tp in self._kafka.assignment():
            end = self._kafka.highwater(tp)
            done = self._done.get(tp)
            if end is not None and done is not None:
                self.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, end - done))
                self._lag_labels.add(tp)

    def _close(self) -> None:
        if self.consumer is not None:
            try:
                self.consumer.close(autocommit=False)
            except KafkaError as exc:
                log.warning("consumer close failed", extra={"fields": {"error": str(exc)}})
        self._joining_since = None  # closing revokes the partitions; that is no join
        if self.publisher is not None:
            self.publisher.close()
        log.info(
            "stopped",
            extra={
                "fields": {
                    "consumed": self.summary.consumed,
                    "scored": self.summary.scored,
                    "rejected": self.summary.rejected,
                    "anomalies": self.summary.anomalies,
                }
            },
        )


def _cause(exc: BaseException) -> str:
    """The error as a reason: SQLAlchemy's wrapper (which quotes the statement and its parameters,
    payloads included) is replaced by the error it wraps."""
    if isinstance(exc, StatementError) and exc.orig is not None:
        exc = exc.orig
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
