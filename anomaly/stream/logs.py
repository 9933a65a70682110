"""Structured logs: one JSON object per line, so a log shipper can index fields, not parse prose.

Code logs with ``extra={"fields": {...}}``; the fields land at the top level of the line.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...fields}``, plus ``error`` with the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def use_json_logs(level: int = logging.INFO) -> None:
    """Route every logger's records through one JSON-lines handler on stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("kafka").setLevel(max(level, logging.WARNING))
