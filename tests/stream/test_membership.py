"""The scorer's side of group membership, against a small fake of kafka-python's consumer.

The fake stands for kafka-python 3.0.12's behaviour that matters here: a join started by one wait and
finished before the next is lost (the next wait sends a fresh JoinGroup). The real two-worker run is
tests/stream/test_workers.py.
"""

from __future__ import annotations

from pathlib import Path

from kafka import TopicPartition
from kafka.errors import RebalanceInProgressError

from anomaly.store import migrate
from anomaly.store.engine import get_engine
from anomaly.stream.consumer import ServeSettings, StreamScorer
from tests.stream.support import register

P0, P1 = TopicPartition("pumps", 0), TopicPartition("pumps", 1)


class FakeCoordinator:
    """A join that needs ``waits`` waits on the coordinator to finish; a gap between waits loses it."""

    def __init__(self, waits: int, reachable: bool = True) -> None:
        self.waits, self.reachable, self.calls = waits, reachable, 0
        self.joined = False

    def need_rejoin(self) -> bool:
        return not self.joined

    def ensure_coordinator_ready(self, timeout_ms: int) -> bool:
        return self.reachable

    def ensure_active_group(self, timeout_ms: int) -> bool:
        self.calls += 1
        self.joined = self.calls >= self.waits
        return self.joined


class FakeConsumer:
    def __init__(self, coordinator: FakeCoordinator, owned: set[TopicPartition]) -> None:
        self._coordinator, self.owned = coordinator, owned
        self.commits: list[dict] = []
        self.polls_while_joining = 0

    def pause(self, *partitions: TopicPartition) -> None:
        pass

    def paused(self) -> set[TopicPartition]:
        return set()

    def poll(self, timeout_ms: int, max_records: int) -> dict:
        if self._coordinator.need_rejoin():
            self.polls_while_joining += 1
            self._coordinator.calls = 0  # the join finished in the gap after this poll is thrown away
        return {}

    def assignment(self) -> set[TopicPartition]:
        return self.owned

    def commit(self, offsets: dict) -> None:
        if self._coordinator.need_rejoin():
            raise RebalanceInProgressError("Offset commit cannot be completed since the consumer is rebalancing")
        self.commits.append({tp: meta.offset for tp, meta in offsets.items()})

    config = {"max_poll_records": 500}


def scorer(tmp_path: Path, tiny_models: dict, fake: FakeConsumer) -> StreamScorer:
    url = f"sqlite:///{tmp_path / 'membership.db'}"
    migrate.upgrade(url=url)
    register(url, "pumps", tiny_models["series"])
    settings = ServeSettings(topics=["pumps"], models={"pumps": "pumps"}, bootstrap_servers="127.0.0.1:9")
    s = StreamScorer(settings, get_engine(url))
    s.consumer = fake  # type: ignore[assignment]
    return s


def test_a_pending_join_is_waited_out_before_the_next_poll(tmp_path: Path, tiny_models: dict) -> None:
    fake = FakeConsumer(FakeCoordinator(waits=5), {P0})
    s = scorer(tmp_path, tiny_models, fake)
    s._poll(100, 10)
    assert fake._coordinator.joined and fake._coordinator.calls == 5
    assert fake.polls_while_joining == 0


def test_an_unreachable_coordinator_or_a_stop_ends_the_wait(tmp_path: Path, tiny_models: dict) -> None:
    unreachable = FakeConsumer(FakeCoordinator(waits=5, reachable=False), {P0})
    s = scorer(tmp_path, tiny_models, unreachable)
    s._complete_join()
    assert unreachable._coordinator.calls == 0 and not unreachable._coordinator.joined

    stopping = FakeConsumer(FakeCoordinator(waits=5), {P0})
    s = scorer(tmp_path, tiny_models, stopping)
    s.stop()
    s._complete_join()
    assert stopping._coordinator.calls == 0


def test_a_batch_whose_partition_was_revoked_while_it_was_written_is_still_committed(
    tmp_path: Path, tiny_models: dict
) -> None:
    fake = FakeConsumer(FakeCoordinator(waits=1), {P0})
    s = scorer(tmp_path, tiny_models, fake)
    assert s._commit({P0: 10, P1: 20})
    assert fake.commits == [{P0: 10, P1: 20}]
    # Only an owned partition's commit is remembered: P1 is committed again if it comes back.
    assert s._commit({P0: 10, P1: 20})
    assert fake.commits[-1] == {P1: 20}


def test_a_commit_during_a_rebalance_waits_for_the_join_or_is_left_when_stopping(
    tmp_path: Path, tiny_models: dict
) -> None:
    running = FakeConsumer(FakeCoordinator(waits=3), {P0})
    assert scorer(tmp_path, tiny_models, running)._commit({P0: 10})
    assert running._coordinator.joined and running.commits == [{P0: 10}]

    stopping = FakeConsumer(FakeCoordinator(waits=3), {P0})
    s = scorer(tmp_path, tiny_models, stopping)
    s.stop()
    assert not s._commit({P0: 10}) and stopping.commits == [] and s._waiting_on is None
