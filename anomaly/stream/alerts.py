"""Alerts: every anomalous event is also produced, as JSON, to the alerts topic for on-call tooling.

Produced with the idempotent producer after the event is stored; a crash before the offsets are
committed can repeat an alert, which its (topic, partition, offset) identifies as the same event.
"""

from __future__ import annotations

import json
from datetime import datetime

from anomaly.stream.decode import Message
from anomaly.stream.models import Scored, ServingModel
from anomaly.stream.publish import Outgoing

DEFAULT_ALERTS_TOPIC = "anomaly.alerts"


def alert(
    message: Message,
    source: str | None,
    event_time: datetime | None,
    scored: Scored,
    model: ServingModel,
    topic: str = DEFAULT_ALERTS_TOPIC,
) -> Outgoing:
    """The alert JSON, keyed by source so one source's alerts stay in order on one partition."""
    body = {
        "source": source,
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "event_time": event_time.isoformat() if event_time else None,
        "score": scored.score,
        "threshold": scored.threshold,
        "components": scored.components,
        "model": model.name,
        "model_version": model.version,
    }
    return Outgoing(
        topic,
        json.dumps(body).encode(),
        source.encode("utf-8", "backslashreplace") if source else message.key,
        origin=(message.topic, message.partition, message.offset),
    )
