"""The service configuration: one TOML file, ``ANOMALY_...`` environment variables over it, checked once.

The file is ``--config FILE`` (a global option), else ``ANOMALY_CONFIG``, else ``anomaly.toml`` in the
working directory when there is one. Each key ``[table] name`` is overridden by ``ANOMALY_TABLE_NAME``
(``ANOMALY_KAFKA_BOOTSTRAP`` for ``[kafka] bootstrap_servers``, the name operators already use); a
secret may instead come from the file named by ``..._FILE``, as container secrets are mounted. The
merged values are validated by pydantic-settings on every read, so a wrong type, an unknown key or a
missing certificate file is one line naming the key and where it came from, before any connection.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    PositiveInt,
    SecretStr,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from anomaly.errors import AnomalyError

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library
    import tomli as tomllib

CONFIG_ENV = "ANOMALY_CONFIG"
CONFIG_FILE = "anomaly.toml"
DEFAULT_URL = "sqlite:///anomaly.db"
DEFAULT_BOOTSTRAP = "127.0.0.1:19092"  # scripts/kafka.sh's broker
# Keys whose values never show: the database URL carries its password.
SECRET_KEYS = frozenset({"database.url", "kafka.sasl_plain_password", "kafka.ssl_password", "ui.token"})
_ENV_NAMES = {"kafka.bootstrap_servers": "ANOMALY_KAFKA_BOOTSTRAP"}
# Tables of tables: only the file sets them, a variable could not name one model's key readably.
_FILE_ONLY = frozenset({"retrain.models"})

_explicit_path: ContextVar[Path | None] = ContextVar("anomaly_config_path", default=None)


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseConfig(_Table):
    """``[database]``: where the store is (SQLAlchemy URL; ``postgres://`` is read as psycopg)."""

    url: str = DEFAULT_URL


class KafkaConfig(_Table):
    """``[kafka]``: the broker and how to authenticate; the names are kafka-python's client options."""

    bootstrap_servers: str | list[str] = DEFAULT_BOOTSTRAP
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] | None = None
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_plain_username: str | None = None
    sasl_plain_password: SecretStr | None = None
    ssl_cafile: FilePath | None = None
    ssl_certfile: FilePath | None = None
    ssl_keyfile: FilePath | None = None
    ssl_password: SecretStr | None = None
    ssl_check_hostname: bool | None = None
    client_id: str | None = None
    request_timeout_ms: PositiveInt | None = None
    metadata_max_age_ms: PositiveInt | None = None
    reconnect_backoff_max_ms: PositiveInt | None = None
    bootstrap_timeout_ms: PositiveInt | None = None

    def client(self) -> dict[str, Any]:
        """The kafka-python keyword arguments: only the options set, secrets revealed, paths as text."""
        options = self.model_dump(exclude_none=True, exclude={"bootstrap_servers"})
        for key, value in options.items():
            if isinstance(value, SecretStr):
                options[key] = value.get_secret_value()
            elif isinstance(value, Path):
                options[key] = str(value)
        return options


class ServeConfig(_Table):
    """``[serve]``: what ``anomaly serve`` does when its flags do not say (the flags win)."""

    topics: list[str] = []
    models: list[str] = Field(default=[], description="NAME for every topic, or TOPIC=NAME")
    group: str = "anomaly-serve"
    metrics_port: int = Field(default=9400, ge=0, le=65535)
    health_timeout: float = Field(default=30.0, ge=1)
    store_payload: bool = True
    workers: PositiveInt = Field(default=1, description="scorer processes on this machine, in one group")

    @field_validator("topics", "models", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """An environment variable holds a list as ``a,b``."""
        return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value


class RetrainOverrides(_Table):
    """``[retrain.models.NAME]``: one model's own training data and promotion margins, over ``[retrain]``'s.

    Models fed by different sources differ in how much stored traffic to trust and how strict the
    comparison must be; the process limits stay shared, since every retrain runs on the same machine.
    Unset keys are None and never dumped, so ``config show`` and a run's record hold only what is set.
    """

    data: Literal["source", "events", "both"] | None = None
    max_events: PositiveInt | None = None
    contamination: float | None = Field(default=None, ge=0, lt=1)
    min_items: PositiveInt | None = None
    holdout: float | None = Field(default=None, gt=0, lt=1)
    epochs: PositiveInt | None = None
    fpr_margin: float | None = Field(default=None, ge=0, le=1)
    auroc_margin: float | None = Field(default=None, ge=0, le=1)

    @model_serializer(mode="wrap")
    def _set_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}


class RetrainConfig(_Table):
    """``[retrain]``: what a retrain trains on, when its challenger replaces the champion, and its process's limits."""

    data: Literal["source", "events", "both"] = "both"
    max_events: PositiveInt = 20_000
    contamination: float = Field(default=0.05, ge=0, lt=1)
    min_items: PositiveInt = 32
    holdout: float = Field(default=0.2, gt=0, lt=1)
    epochs: PositiveInt | None = None
    fpr_margin: float = Field(default=0.01, ge=0, le=1)
    auroc_margin: float = Field(default=0.02, ge=0, le=1)
    models_dir: Path | None = None
    time_limit: float = Field(default=3600.0, gt=0)
    memory_limit_mb: PositiveInt | None = 8192
    nice: int = Field(default=10, ge=0, le=19)
    threads: PositiveInt = 1
    misfire_grace_time: PositiveInt = 600
    models: dict[str, RetrainOverrides] = {}

    def for_model(self, name: str) -> RetrainConfig:
        """The settings a retrain of ``name`` runs with: its ``[retrain.models.NAME]`` keys over these."""
        overrides = self.models.get(name)
        return self.model_copy(update=overrides.model_dump()) if overrides else self

    def decisions(self) -> dict[str, Any]:
        """The values of the keys a model may override, as a run records what it trained and was judged with."""
        return {key: getattr(self, key) for key in RetrainOverrides.model_fields}


class RetentionConfig(_Table):
    """``[retention]``: how long stored payloads and retired model folders are kept (0 turns either off).

    Only the payload bytes go; the events stay (scores, components, labels, positions). Labelled events
    keep theirs by default: retraining trains on the ones labelled normal and judges on the anomalies.
    """

    payload_days: int = Field(default=30, ge=0)
    keep_labelled: bool = True
    keep_versions: int = Field(default=5, ge=0)
    every: str = Field(default="1d", pattern=r"^[1-9][0-9]*\s*[smhd]$")
    batch_size: int = Field(default=1000, ge=1, le=10_000)


class UiConfig(_Table):
    """``[ui]``: where ``anomaly ui`` listens, and the token that allows labelling (none: read-only)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8050, ge=0, le=65535)
    token: SecretStr | None = None


def env_names(key: str) -> tuple[str, ...]:
    """The variables that set ``key`` (``table.name``): its own, and ``..._FILE`` for a secret."""
    if key in _FILE_ONLY:
        return ()
    name = _ENV_NAMES.get(key, "ANOMALY_" + key.replace(".", "_").upper())
    return (name, f"{name}_FILE") if key in SECRET_KEYS else (name,)


def keys() -> list[str]:
    """Every configuration key, ``table.name``, in the order the reference lists them."""
    # Each table's default is an instance of its model, so its type holds the table's fields.
    return [
        f"{table}.{name}" for table, info in Settings.model_fields.items() for name in type(info.default).model_fields
    ]


def _env_values() -> dict[str, tuple[str, str]]:
    """``key -> (value, origin)`` for each key set in the environment, a ``_FILE`` variable read."""
    found: dict[str, tuple[str, str]] = {}
    for key in keys():
        names = [name for name in env_names(key) if os.environ.get(name)]
        if len(names) > 1:
            raise AnomalyError(f"set one of {' and '.join(names)}, not both")
        if not names:
            continue
        name = names[0]
        if name.endswith("_FILE"):
            path = Path(os.environ[name])
            try:
                found[key] = (path.read_text(encoding="utf-8").rstrip("\r\n"), f"env file {name}")
            except OSError as exc:
                raise AnomalyError(f"{name} names {path}, which cannot be read ({exc.strerror or exc})") from None
            except UnicodeDecodeError as exc:
                raise AnomalyError(f"{name} names {path}, which cannot be read ({exc})") from None
        else:
            found[key] = (os.environ[name], f"env {name}")
    return found


def _nested(flat: dict[str, Any]) -> dict[str, dict[str, Any]]:
    tables: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        table, name = key.split(".", 1)
        tables.setdefault(table, {})[name] = value
    return tables


class _EnvSource(PydanticBaseSettingsSource):
    """``ANOMALY_TABLE_NAME`` and ``..._FILE`` variables, by the names ``env_names`` gives."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: ``__call__`` reads every variable at once (pydantic-settings requires the method)."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return _nested({key: value for key, (value, _) in _env_values().items()})


class Settings(BaseSettings):
    """All tables; the environment overrides the file (given as keyword arguments), both the defaults."""

    model_config = SettingsConfigDict(extra="forbid")

    database: DatabaseConfig = DatabaseConfig()
    kafka: KafkaConfig = KafkaConfig()
    serve: ServeConfig = ServeConfig()
    ui: UiConfig = UiConfig()
    retrain: RetrainConfig = RetrainConfig()
    retention: RetentionConfig = RetentionConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return _EnvSource(settings_cls), init_settings


@contextmanager
def using(path: Path | None) -> Iterator[None]:
    """Read the configuration from ``path`` (``--config``) inside the block; None leaves the usual lookup."""
    token = _explicit_path.set(path)
    try:
        yield
    finally:
        _explicit_path.reset(token)


def config_path() -> Path | None:
    """The file in use: ``--config``, ``ANOMALY_CONFIG``, or ``anomaly.toml`` here if it exists."""
    explicit, origin = _explicit_path.get(), "--config"
    if explicit is None and os.environ.get(CONFIG_ENV):
        explicit, origin = Path(os.environ[CONFIG_ENV]), CONFIG_ENV
    if explicit is not None:
        if not explicit.is_file():
            raise AnomalyError(f"{origin} names {explicit}, which is not a file")
        return explicit
    local = Path.cwd() / CONFIG_FILE
    return local if local.is_file() else None


def _file_values(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise AnomalyError(f"cannot read config file {path}: {exc}") from None


@dataclass(frozen=True)
class Loaded:
    """The validated settings, the file they were read from, and where each key set came from."""

    settings: Settings
    path: Path | None
    origins: dict[str, str]

    def origin(self, key: str) -> str:
        """``default``, ``file PATH``, ``env NAME`` or ``env file NAME``: what an operator must edit to change it."""
        return self.origins.get(key, "default")


def _flat(data: dict[str, Any]) -> dict[str, Any]:
    return {
        f"{table}.{name}": value
        for table, values in data.items()
        if isinstance(values, dict)
        for name, value in values.items()
    }


def _one_line(exc: ValidationError, path: Path | None, origins: dict[str, str]) -> str:
    """The first problem as ``WHERE: KEY: what is wrong (got VALUE)``; secrets are never shown."""
    errors = exc.errors()
    error = errors[0]
    # A model's override is named down to its own key: retrain.models.NAME.KEY.
    per_model = tuple(error["loc"][:2]) == ("retrain", "models")
    key = ".".join(str(part) for part in error["loc"][: 4 if per_model else 2])
    where = origins.get(key, f"file {path}").removeprefix("env file ").removeprefix("env ").removeprefix("file ")
    if error["type"] == "extra_forbidden":
        table = key.split(".")[0]
        known = [k for k in keys() if k.startswith(f"{table}.")] if "." in key else list(Settings.model_fields)
        if per_model:
            known = list(RetrainOverrides.model_fields)
        message = f"{where}: unknown setting {key} (allowed: {', '.join(known)})"
    else:
        message = f"{where}: {key}: {error['msg'][0].lower()}{error['msg'][1:]}"
        if (key in keys() or per_model) and key not in SECRET_KEYS:
            message += f" (got {str(error['input'])[:80]!r})"
    more = len({tuple(e["loc"][:2]) for e in errors}) - 1
    return message + (f" (and {more} more)" if more > 0 else "")


def load() -> Loaded:
    """Read and validate the configuration now (every call: tests and the CLI change it between calls)."""
    path = config_path()
    file_data = _file_values(path)
    env = _env_values()
    origins = {key: f"file {path}" for key in _flat(file_data)}
    origins.update({key: origin for key, (_, origin) in env.items()})
    try:
        settings = Settings(**file_data)
    except ValidationError as exc:
        raise AnomalyError(_one_line(exc, path, origins)) from None
    return Loaded(settings, path, origins)


def raw_secrets() -> dict[str, str]:
    """Each secret key's configured value, valid or not, for a last scrub of messages; none if unreadable."""
    try:
        values = _flat(_file_values(config_path()))
        values.update({key: value for key, (value, _) in _env_values().items()})
    except AnomalyError:
        return {}
    return {key: str(values[key]) for key in SECRET_KEYS if values.get(key)}
