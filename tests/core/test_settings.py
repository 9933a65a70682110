"""The service configuration: file, environment and secret files in order, checked in one line, shown masked."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from anomaly import settings
from anomaly.errors import AnomalyError
from anomaly.stream.config import kafka_settings
from tests.test_cli_errors import assert_one_error_line, run_anomaly

DB_SECRET = "db-Pw-7731"
SASL_SECRET = "sasl-Pw-5512"
KEY_SECRET = "key-Pw-9043"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ANOMALY_* from the machine running the tests, and no anomaly.toml but the test's own."""
    for key in settings.keys():
        for name in settings.env_names(key):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(settings.CONFIG_ENV, raising=False)
    monkeypatch.chdir(tmp_path)


def _show(cli, *args: str) -> dict[str, dict]:
    result = cli(*args, "config", "show", "--json")
    assert result.exit_code == 0, result.output
    return {row["key"]: row for row in json.loads(result.output)["settings"]}


def test_each_key_comes_from_default_file_env_or_env_file(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "prod.toml"
    config.write_text(
        '[kafka]\nbootstrap_servers = "k1:9093"\nclient_id = "from-file"\n'
        '[serve]\nmetrics_port = 9500\ngroup = "file-group"\n'
    )
    (tmp_path / "sasl").write_text(f"{SASL_SECRET}\n")  # as a mounted secret usually ends
    monkeypatch.setenv("ANOMALY_SERVE_METRICS_PORT", "9600")
    monkeypatch.setenv("ANOMALY_KAFKA_SASL_PLAIN_PASSWORD_FILE", str(tmp_path / "sasl"))
    shown = _show(cli, "--config", str(config))
    assert shown["database.url"]["source"] == "default"
    assert (shown["serve.group"]["value"], shown["serve.group"]["source"]) == ("file-group", f"file {config}")
    assert (shown["serve.metrics_port"]["value"], shown["serve.metrics_port"]["source"]) == (
        9600,
        "env ANOMALY_SERVE_METRICS_PORT",
    )
    assert shown["kafka.sasl_plain_password"] == {
        "key": "kafka.sasl_plain_password",
        "value": "***",
        "source": "env file ANOMALY_KAFKA_SASL_PLAIN_PASSWORD_FILE",
        "env": ["ANOMALY_KAFKA_SASL_PLAIN_PASSWORD", "ANOMALY_KAFKA_SASL_PLAIN_PASSWORD_FILE"],
    }
    with settings.using(config):
        assert kafka_settings() == ("k1:9093", {"client_id": "from-file", "sasl_plain_password": SASL_SECRET})


def test_the_old_variable_names_still_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALY_KAFKA_BOOTSTRAP", "k9:9092")
    monkeypatch.setenv("ANOMALY_DATABASE_URL", "sqlite:///env.db")
    loaded = settings.load()
    assert (loaded.settings.kafka.bootstrap_servers, loaded.settings.database.url) == ("k9:9092", "sqlite:///env.db")
    assert loaded.origin("kafka.bootstrap_servers") == "env ANOMALY_KAFKA_BOOTSTRAP"


def test_kafka_security_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not checked here")
    monkeypatch.setenv("ANOMALY_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("ANOMALY_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("ANOMALY_KAFKA_SASL_PLAIN_USERNAME", "alice")
    monkeypatch.setenv("ANOMALY_KAFKA_SASL_PLAIN_PASSWORD", SASL_SECRET)
    monkeypatch.setenv("ANOMALY_KAFKA_SSL_CAFILE", "ca.pem")
    monkeypatch.setenv("ANOMALY_KAFKA_SSL_CHECK_HOSTNAME", "false")
    assert kafka_settings()[1] == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "alice",
        "sasl_plain_password": SASL_SECRET,
        "ssl_cafile": "ca.pem",
        "ssl_check_hostname": False,
    }


def test_lists_from_the_environment_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALY_SERVE_TOPICS", "sensors, parts")
    monkeypatch.setenv("ANOMALY_SERVE_MODELS", "pumps,parts=tiles")
    serve = settings.load().settings.serve
    assert (serve.topics, serve.models) == (["sensors", "parts"], ["pumps", "parts=tiles"])


def test_serve_flags_override_the_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from anomaly.cli.stream import serve_command

    (tmp_path / "anomaly.toml").write_text(
        '[serve]\ntopics = ["a", "b"]\nmodels = ["m"]\ngroup = "g-file"\n'
        "metrics_port = 9500\nhealth_timeout = 12.5\nstore_payload = false\n"
    )
    monkeypatch.setenv("ANOMALY_SERVE_GROUP", "g-env")
    params = serve_command.make_context("serve", ["--metrics-port", "0"]).params
    assert (params["topics"], params["models"], params["group"]) == (("a", "b"), ("m",), "g-env")
    assert (params["metrics_port"], params["health_timeout"], params["store_payload"]) == (0, 12.5, False)
    params = serve_command.make_context("serve", ["--topic", "c", "--group", "g-flag", "--payload"]).params
    assert (params["topics"], params["group"], params["store_payload"]) == (("c",), "g-flag", True)


def test_serve_without_topics_anywhere_names_the_option(cli) -> None:
    result = cli("serve", "--model", "m")
    assert result.exit_code == 2 and "Missing option '--topic'" in result.output


@pytest.mark.parametrize(
    ("content", "env", "fragments"),
    [
        ('[serve]\nmetrics_port = "abc"\n', {}, ("anomaly.toml: serve.metrics_port:", "valid integer", "'abc'")),
        ("[serve]\nmetrics_port = 70000\n", {}, ("serve.metrics_port: input should be less than or equal to 65535",)),
        ("", {"ANOMALY_SERVE_HEALTH_TIMEOUT": "soon"}, ("ANOMALY_SERVE_HEALTH_TIMEOUT: serve.health_timeout:",)),
        ('[kafka]\nsasl_pasword = "x"\n', {}, ("unknown setting kafka.sasl_pasword", "kafka.sasl_plain_password")),
        ('[kafak]\nclient_id = "x"\n', {}, ("unknown setting kafak", "database, kafka, serve")),
        ('[kafka]\nsasl_mechanism = "GSSAPI"\n', {}, ("kafka.sasl_mechanism:", "'SCRAM-SHA-512'")),
        (
            '[kafka]\nssl_cafile = "missing-ca.pem"\n',
            {},
            ("kafka.ssl_cafile:", "not point to a file", "missing-ca.pem"),
        ),
        (
            "",
            {"ANOMALY_KAFKA_SSL_PASSWORD_FILE": "/run/secrets/none"},
            ("ANOMALY_KAFKA_SSL_PASSWORD_FILE names /run/secrets/none", "cannot be read"),
        ),
        (
            "",
            {"ANOMALY_KAFKA_SSL_PASSWORD": KEY_SECRET, "ANOMALY_KAFKA_SSL_PASSWORD_FILE": "/x"},
            ("set one of ANOMALY_KAFKA_SSL_PASSWORD and ANOMALY_KAFKA_SSL_PASSWORD_FILE",),
        ),
        ("[kafka]\nssl_password = 98765431\n", {}, ("kafka.ssl_password: input should be a valid string",)),
    ],
    ids=[
        "type",
        "range",
        "env-type",
        "unknown-key",
        "unknown-table",
        "mechanism",
        "missing-ca",
        "missing-secret-file",
        "both-env-and-file",
        "secret-type",
    ],
)
def test_a_bad_configuration_is_one_line_naming_the_key(
    tmp_path: Path, content: str, env: dict[str, str], fragments: tuple[str, ...]
) -> None:
    (tmp_path / "anomaly.toml").write_text(content + f'[database]\nurl = "postgresql://u:{DB_SECRET}@db/x"\n')
    done = run_anomaly("config", "show", cwd=tmp_path, env=env)
    line = assert_one_error_line(done, *fragments, secrets=(DB_SECRET, KEY_SECRET, "98765431"))
    assert "(and" not in line


def test_a_missing_config_file_is_one_line(tmp_path: Path) -> None:
    assert_one_error_line(
        run_anomaly("--config", "nope.toml", "db", "current", cwd=tmp_path),
        "--config names nope.toml, which is not a file",
    )
    assert_one_error_line(
        run_anomaly("db", "current", cwd=tmp_path, env={"ANOMALY_CONFIG": "gone.toml"}),
        "ANOMALY_CONFIG names gone.toml, which is not a file",
    )


def test_a_secret_file_that_is_not_text_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "password").write_bytes(b"\xff\xfe\x00binary")
    assert_one_error_line(
        run_anomaly("config", "show", cwd=tmp_path, env={"ANOMALY_KAFKA_SSL_PASSWORD_FILE": "password"}),
        "ANOMALY_KAFKA_SSL_PASSWORD_FILE names password, which cannot be read",
        "can't decode byte 0xff",
    )


def test_config_show_prints_no_secret(tmp_path: Path) -> None:
    (tmp_path / "key-pw").write_text(KEY_SECRET)
    (tmp_path / "anomaly.toml").write_text(
        f'[database]\nurl = "postgresql://anomaly:{DB_SECRET}@db:5432/prod"\n'
        f'[kafka]\nsecurity_protocol = "SASL_SSL"\nsasl_plain_username = "alice"\nsasl_plain_password = "{SASL_SECRET}"\n'
    )
    env = {"ANOMALY_KAFKA_SSL_PASSWORD_FILE": str(tmp_path / "key-pw")}
    for args in (("config", "show"), ("config", "show", "--json")):
        done = run_anomaly(*args, cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
        for secret in (DB_SECRET, SASL_SECRET, KEY_SECRET):
            assert secret not in done.stdout + done.stderr
        assert "postgresql://anomaly:***@db:5432/prod" in done.stdout and "alice" in done.stdout


def test_secrets_from_files_are_masked_in_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from anomaly.cli import _masked

    (tmp_path / "db-url").write_text(f"postgresql://u:{DB_SECRET}@db/x\n")
    (tmp_path / "sasl").write_text(SASL_SECRET)
    monkeypatch.setenv("ANOMALY_DATABASE_URL_FILE", str(tmp_path / "db-url"))
    monkeypatch.setenv("ANOMALY_KAFKA_SASL_PLAIN_PASSWORD_FILE", str(tmp_path / "sasl"))
    assert _masked(f"boom {DB_SECRET} {SASL_SECRET}") == "boom *** ***"


def test_secrets_are_masked_even_when_the_configuration_is_invalid(tmp_path: Path) -> None:
    from anomaly.cli import _masked

    (tmp_path / "anomaly.toml").write_text(f'[kafka]\nsasl_plain_password = "{SASL_SECRET}"\nretries = "x"\n')
    with pytest.raises(AnomalyError, match="unknown setting kafka.retries"):
        settings.load()
    assert _masked(f"boom {SASL_SECRET}") == "boom ***"


def test_the_reference_documents_every_key_and_variable_and_no_other() -> None:
    reference = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    tables = re.split(r"^## ", reference, flags=re.MULTILINE)
    for key in settings.keys():
        table, name = key.split(".")
        section = next(text for text in tables if text.startswith(f"`[{table}]`"))
        assert f"| `{name}` | " in section, key
        for variable in settings.env_names(key):
            assert f"`{variable}`" in section, variable
    known = {name for key in settings.keys() for name in settings.env_names(key)} | {settings.CONFIG_ENV}
    assert set(re.findall(r"ANOMALY_[A-Z0-9_]+", reference)) <= known


def test_serve_takes_its_topics_and_models_from_the_global_config_option(cli, tmp_path: Path) -> None:
    from anomaly.store import migrate

    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.upgrade(url=url)
    config = tmp_path / "elsewhere" / "prod.toml"
    config.parent.mkdir()
    config.write_text(
        f'[database]\nurl = "{url}"\n[serve]\ntopics = ["t"]\nmodels = ["from-config"]\nmetrics_port = 0\n'
    )
    result = cli("--config", str(config), "serve", "--log-format", "text")
    assert result.exit_code == 2 and "no active version of model 'from-config'" in result.output
