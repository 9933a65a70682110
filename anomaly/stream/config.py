"""Where Kafka is and how to authenticate: ``--bootstrap-servers``, the environment, or ``anomaly.toml``.

Security settings (TLS, SASL) live in the ``[kafka]`` table of the same config file as the database
URL, never on the command line where they would show in ``ps``. Only the kafka-python client options
listed in ``CLIENT_KEYS`` are passed through, so a typo is an error rather than silently ignored.
"""

from __future__ import annotations

import os
import tomllib
from typing import Any

from anomaly.errors import AnomalyError
from anomaly.store.config import _config_file

BOOTSTRAP_ENV = "ANOMALY_KAFKA_BOOTSTRAP"
DEFAULT_BOOTSTRAP = "127.0.0.1:59092"  # scripts/kafka.sh's broker
CLIENT_KEYS = frozenset({
    "security_protocol", "ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_password", "ssl_check_hostname",
    "sasl_mechanism", "sasl_plain_username", "sasl_plain_password", "sasl_kerberos_service_name",
    "client_id", "request_timeout_ms", "metadata_max_age_ms", "reconnect_backoff_max_ms",
})


def _file_settings() -> dict[str, Any]:
    path = _config_file()
    if path is None:
        return {}
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("kafka", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise AnomalyError(f"cannot read config file {path}: {exc}") from None
    if not isinstance(table, dict):
        raise AnomalyError(f"{path}: [kafka] must be a table")
    return table


def kafka_settings(bootstrap_servers: str | None = None) -> tuple[str, dict[str, Any]]:
    """The bootstrap address (argument, ``ANOMALY_KAFKA_BOOTSTRAP``, config file, local default) and client options."""
    table = _file_settings()
    unknown = sorted(set(table) - CLIENT_KEYS - {"bootstrap_servers"})
    if unknown:
        raise AnomalyError(f"[kafka] has unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(sorted(CLIENT_KEYS))}")
    bootstrap = bootstrap_servers or os.environ.get(BOOTSTRAP_ENV) or table.get("bootstrap_servers") or DEFAULT_BOOTSTRAP
    return bootstrap, {k: v for k, v in table.items() if k in CLIENT_KEYS}
