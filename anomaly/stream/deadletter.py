"""Dead letters: a message that cannot be scored goes to ``<topic>.dlq`` and the rejected_messages table.

The dead letter is the original key, value and headers, plus headers saying why and where it came
from, so it can be inspected, fixed and replayed into the source topic. Its offset is committed like
any other, so one bad message never holds up its partition.
"""

from __future__ import annotations

from typing import Any

from anomaly.stream.decode import Message, Rejected
from anomaly.stream.publish import Outgoing

REASON_HEADER = "anomaly-reject-reason"


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


def dead_letter(message: Message, rejection: Rejected) -> Outgoing:
    """The message as it came (so it can be replayed once fixed) plus headers saying why and from where."""
    headers = [h for h in message.headers if not h[0].startswith("anomaly-")]
    headers += [
        (REASON_HEADER, rejection.reason.encode()),
        ("anomaly-reject-kind", rejection.kind.encode()),
        ("anomaly-source-topic", message.topic.encode()),
        ("anomaly-source-partition", str(message.partition).encode()),
        ("anomaly-source-offset", str(message.offset).encode()),
    ]
    return Outgoing(dlq_topic(message.topic), message.value or b"", message.key, headers)


def rejection_row(message: Message, rejection: Rejected) -> dict[str, Any]:
    """A ``rejected_messages`` row (the store keeps the first 256 bytes of the value)."""
    return {
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "reason": rejection.reason,
        "raw_head": message.value,
    }
