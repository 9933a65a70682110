"""Dead letters: a message that cannot be scored goes to ``<topic>.dlq`` and the rejected_messages table.

The dead letter is the original key, value and headers, plus headers saying why and where it came
from, so it can be inspected, fixed and replayed into the source topic. Its offset is committed like
any other, so one bad message never holds up its partition.

The scorer accepts messages up to 8 MiB, but a broker refuses records over its ``message.max.bytes``
(1 MiB by default, and the dead-letter topic is usually created with the default). So a message
whose dead letter would be larger than ``DEAD_LETTER_MAX_BYTES`` is dead-lettered as its head plus
the length and SHA-256 of the whole value: enough to find it (its source offset is in the headers)
and to see what it was, and small enough for any broker.
"""

from __future__ import annotations

import hashlib
from typing import Any

from anomaly.stream.decode import Message, Rejected
from anomaly.stream.publish import Outgoing

REASON_HEADER = "anomaly-reject-reason"
TRUNCATED_HEADER = "anomaly-truncated"
DEAD_LETTER_MAX_BYTES = 512 * 1024
HEAD_BYTES = 64 * 1024
MAX_REASON_CHARS = 1000


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


def _size(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> int:
    return len(key or b"") + len(value) + sum(len(name) + len(data) for name, data in headers)


def dead_letter(message: Message, rejection: Rejected) -> Outgoing:
    """The message as it came (so it can be replayed once fixed) plus headers saying why and from where."""
    value, key = message.value or b"", message.key
    headers = [h for h in message.headers if not h[0].startswith("anomaly-")]
    if _size(key, value, headers) > DEAD_LETTER_MAX_BYTES:
        digest = hashlib.sha256(value).hexdigest()
        truncated = [(TRUNCATED_HEADER, f"value of {len(value)} bytes, sha256 {digest}; head kept".encode())]
        value, key = value[:HEAD_BYTES], key[:HEAD_BYTES] if key is not None else None
        headers = headers if _size(None, b"", headers) <= HEAD_BYTES else []
        headers += truncated
    headers += [
        (REASON_HEADER, safe_text(rejection.reason).encode()),
        ("anomaly-reject-kind", rejection.kind.encode()),
        ("anomaly-source-topic", message.topic.encode()),
        ("anomaly-source-partition", str(message.partition).encode()),
        ("anomaly-source-offset", str(message.offset).encode()),
    ]
    return Outgoing(
        dlq_topic(message.topic), value, key, headers, origin=(message.topic, message.partition, message.offset)
    )


def rejection_row(message: Message, rejection: Rejected) -> dict[str, Any]:
    """A ``rejected_messages`` row (the store keeps the first 256 bytes of the value)."""
    return {
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "reason": safe_text(rejection.reason),
        "raw_head": message.value,
    }


def safe_text(reason: str) -> str:
    """``reason`` bounded in length and encodable as UTF-8 and by PostgreSQL: a reason quotes the
    message it rejects, which may hold lone surrogates or NUL, and must never fail to be stored."""
    text = reason if len(reason) <= MAX_REASON_CHARS else reason[:MAX_REASON_CHARS] + "…"
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
