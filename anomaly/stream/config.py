"""Where Kafka is and how to authenticate: ``--bootstrap-servers``, else the ``[kafka]`` configuration.

Security settings (TLS, SASL) live in the ``[kafka]`` table of the configuration (``anomaly.settings``:
the file or ``ANOMALY_KAFKA_...`` variables), never on the command line where they would show in
``ps``. Only the kafka-python client options the settings model declares are passed through, so a
typo is an error rather than silently ignored.
"""

from __future__ import annotations

import logging
import ssl
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from anomaly import settings
from anomaly.errors import AnomalyError
from anomaly.settings import DEFAULT_BOOTSTRAP  # noqa: F401  (where callers have always found it)
from anomaly.store.config import scrub

(BOOTSTRAP_ENV,) = settings.env_names("kafka.bootstrap_servers")
SECRET_KEYS = frozenset(key.split(".", 1)[1] for key in settings.SECRET_KEYS if key.startswith("kafka."))


def kafka_settings(bootstrap_servers: str | None = None) -> tuple[str | list[str], dict[str, Any]]:
    """The bootstrap address (argument, else the configuration) and the kafka-python client options set."""
    kafka = settings.load().settings.kafka
    bootstrap = bootstrap_servers or kafka.bootstrap_servers
    _check_bootstrap(bootstrap)
    client = kafka.client()
    _check_client_key(client)
    return bootstrap, client


def _check_bootstrap(bootstrap: str | list[str]) -> None:
    """Read each address as kafka-python will, so a bad port is an error here and not a traceback inside the client."""
    from kafka.cluster import collect_hosts

    for address in bootstrap.split(",") if isinstance(bootstrap, str) else bootstrap:
        try:
            ((_, port, _),) = collect_hosts(str(address), randomize=False)
        except ValueError:
            port = None
        if port is None or not 0 < port < 65536:
            raise AnomalyError(f"bootstrap server {str(address).strip()!r}: the port must be a number from 1 to 65535")


def _check_client_key(client: dict[str, Any]) -> None:
    """Load the client certificate and key as kafka-python will, so a wrong key password is one line here.

    Inside the client it fails every connection with OpenSSL's bare "PEM lib" until the bootstrap
    times out; and an encrypted key with no password set would make OpenSSL prompt on the terminal.
    """
    if client.get("security_protocol") not in ("SSL", "SASL_SSL") or "ssl_certfile" not in client:
        return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_cert_chain(client["ssl_certfile"], client.get("ssl_keyfile"), client.get("ssl_password", ""))
    except ssl.SSLError as exc:
        key = "kafka.ssl_keyfile" if "ssl_keyfile" in client else "kafka.ssl_certfile"
        hint = "check kafka.ssl_password" if "ssl_password" in client else "set kafka.ssl_password if it is encrypted"
        raise AnomalyError(
            f"{key}: cannot load the client certificate and key {client.get('ssl_keyfile', client['ssl_certfile'])} "
            f"({hint}; OpenSSL: {exc})"
        ) from None


def kafka_secrets() -> set[str]:
    """The configured TLS key and SASL passwords, for a last scrub of any message; none if the config cannot be read."""
    return {value for key, value in settings.raw_secrets().items() if key.startswith("kafka.")}


# kafka-python drops a reply that arrives with the end of the connection, so a refused login is
# often seen only as the broker hanging up.
_DROPPED = "socket disconnected"
_REFUSED_LOGIN_HINT = (
    "the broker hangs up so after a refused login: check kafka.sasl_mechanism, "
    "kafka.sasl_plain_username and kafka.sasl_plain_password"
)


class _LoggedErrors(logging.Handler):
    """Keeps the exceptions kafka-python last logged: the one it raises often says only "unable to bootstrap".

    A refusal (an error kafka-python does not count as retriable, such as a failed login) is kept apart
    from lost connections and outranks them: the broker drops the socket after refusing a login, and
    whether the client reads the refusal or the dropped socket first varies from one attempt to the next.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors: deque[BaseException] = deque(maxlen=8)
        self.refusals: deque[BaseException] = deque(maxlen=8)

    def emit(self, record: logging.LogRecord) -> None:
        from kafka.errors import RetriableError

        args = record.args if isinstance(record.args, tuple) else ()
        for error in (a for a in args if isinstance(a, BaseException)):
            (self.errors if isinstance(error, RetriableError) else self.refusals).append(error)

    def cause_of(self, exc: BaseException) -> BaseException | None:
        """The newest logged refusal, else error, other than ``exc`` itself (which kafka-python logs before raising)."""
        return next((e for e in (*reversed(self.refusals), *reversed(self.errors)) if e != exc), None)


def _describe(exc: BaseException) -> str:
    """A broker error's description, or a client error's message without kafka-python's class-name prefix."""
    from kafka.errors import KafkaError

    description = getattr(exc, "description", None)
    if description:
        return f"{type(exc).__name__} ({description.rstrip('.')})"
    if isinstance(exc, KafkaError) and exc.args:
        return str(exc.args[0])
    return str(exc) or type(exc).__name__


@contextmanager
def user_errors(bootstrap: str | list[str], client: dict[str, Any]) -> Iterator[None]:
    """Turn a Kafka client failure into one AnomalyError line naming the broker, protocol and last cause.

    kafka-python's own log lines are held back (shown with ``-v``): a failing connection logs a
    dozen lines a second, which would bury the one that says what to fix.
    """
    from kafka.errors import KafkaError

    kafka_log = logging.getLogger("kafka")
    logged = _LoggedErrors()
    propagate = kafka_log.propagate
    kafka_log.addHandler(logged)
    kafka_log.propagate = logging.getLogger().isEnabledFor(logging.INFO)
    try:
        yield
    except KafkaError as exc:
        reason = _describe(exc)
        cause = logged.cause_of(exc)
        protocol = client.get("security_protocol", "PLAINTEXT")
        if cause is not None:
            reason = f"{reason}; last error: {_describe(cause)}"
            if protocol.startswith("SASL_") and _describe(cause) == _DROPPED:
                reason += f" ({_REFUSED_LOGIN_HINT})"
        secrets = {str(client[key]) for key in SECRET_KEYS if client.get(key)}
        raise AnomalyError(scrub(f"Kafka at {bootstrap} ({protocol}): {reason}", secrets)) from None
    finally:
        kafka_log.removeHandler(logged)
        kafka_log.propagate = propagate
