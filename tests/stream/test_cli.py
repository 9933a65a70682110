"""The serve command's option handling and Kafka settings, without a broker."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest

from anomaly.cli.stream import _topic_models
from anomaly.errors import AnomalyError
from anomaly.stream.config import BOOTSTRAP_ENV, DEFAULT_BOOTSTRAP, kafka_settings
from tests.kafka_broker import KafkaBroker
from tests.stream.support import register
from tests.test_cli_errors import assert_one_error_line, run_anomaly

KAFKA_SECRET = "kafka-S3cret"
SASL_CONFIG = (
    '[kafka]\nsecurity_protocol = "SASL_PLAINTEXT"\nsasl_mechanism = "PLAIN"\n'
    f'sasl_plain_username = "alice"\nsasl_plain_password = "{KAFKA_SECRET}"\n'
)


def test_one_model_for_all_topics_or_one_per_topic() -> None:
    assert _topic_models(("a", "b"), ("m",)) == {"a": "m", "b": "m"}
    assert _topic_models(("a", "b"), ("m", "b=n")) == {"a": "m", "b": "n"}
    assert _topic_models(("a", "b"), ("a=x", "b=y")) == {"a": "x", "b": "y"}
    assert _topic_models(("a", "b"), ("a=csv",), "--decoder", required=False) == {"a": "csv"}
    assert _topic_models(("a", "b"), (), "--decoder", required=False) == {}


@pytest.mark.parametrize(
    ("models", "words"),
    [(("m", "n"), "one --model NAME"), (("c=x",), "not in --topic"), (("a=x",), "no --model for topic(s) b")],
)
def test_model_routing_mistakes_are_user_errors(models: tuple[str, ...], words: str) -> None:
    with pytest.raises(AnomalyError, match=re.escape(words)):
        _topic_models(("a", "b"), models)


def test_kafka_settings_from_argument_environment_and_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(BOOTSTRAP_ENV, raising=False)
    monkeypatch.delenv("ANOMALY_CONFIG", raising=False)
    assert kafka_settings() == (DEFAULT_BOOTSTRAP, {})
    (tmp_path / "anomaly.toml").write_text(
        '[kafka]\nbootstrap_servers = "k1:9093"\nsecurity_protocol = "SASL_SSL"\nsasl_mechanism = "PLAIN"\n'
    )
    assert kafka_settings() == ("k1:9093", {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN"})
    monkeypatch.setenv(BOOTSTRAP_ENV, "k2:9092")
    assert kafka_settings()[0] == "k2:9092"
    assert kafka_settings("k3:9092")[0] == "k3:9092"
    (tmp_path / "anomaly.toml").write_text('[kafka]\nsasl_pasword = "typo"\n')
    with pytest.raises(AnomalyError, match="unknown setting.*sasl_pasword"):
        kafka_settings()


def test_serve_without_a_registered_model_is_a_one_line_error(cli, tmp_path: Path, monkeypatch) -> None:
    from anomaly.store import migrate

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    migrate.upgrade(url=url)
    monkeypatch.setenv("ANOMALY_DATABASE_URL", url)
    result = cli("serve", "--topic", "t", "--model", "nothing", "--metrics-port", "0", "--log-format", "text")
    assert result.exit_code == 2
    assert "no active version of model 'nothing'" in result.output


@pytest.mark.parametrize("servers", ["127.0.0.1:abc", "k1:9092,k2:x", "[::1]:nine", "k1:0", "k1:70000"])
def test_bootstrap_servers_with_a_bad_port_are_a_user_error(
    servers: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AnomalyError, match="port must be a number"):
        kafka_settings(servers)


def test_kafka_settings_accept_lists_protocol_prefixes_and_ipv6(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "anomaly.toml").write_text('[kafka]\nbootstrap_servers = ["k1:9093", "k2"]\n')
    assert kafka_settings()[0] == ["k1:9093", "k2"]
    assert kafka_settings("SASL_SSL://k1:9093,[::1]:9092")[0] == "SASL_SSL://k1:9093,[::1]:9092"


def test_produce_with_a_bad_bootstrap_port_is_one_line(tmp_path: Path) -> None:
    done = run_anomaly("produce", "--digits", "--topic", "t", "--bootstrap-servers", "127.0.0.1:abc", cwd=tmp_path)
    assert_one_error_line(done, "'127.0.0.1:abc'", "port must be a number")


def test_produce_with_no_broker_is_one_line_without_the_sasl_password(tmp_path: Path) -> None:
    (tmp_path / "anomaly.toml").write_text(SASL_CONFIG + "bootstrap_timeout_ms = 1000\n")
    done = run_anomaly("produce", "--digits", "--topic", "t", "--bootstrap-servers", "127.0.0.1:1", cwd=tmp_path)
    assert_one_error_line(done, "Kafka at 127.0.0.1:1 (SASL_PLAINTEXT)", "Unable to bootstrap", secrets=(KAFKA_SECRET,))


@pytest.mark.kafka
def test_produce_with_sasl_against_a_plaintext_broker_fails_within_seconds(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    (tmp_path / "anomaly.toml").write_text(SASL_CONFIG)
    started = time.monotonic()
    done = run_anomaly(
        "produce", "--digits", "--topic", "t", "--bootstrap-servers", kafka_broker.bootstrap, cwd=tmp_path
    )
    assert time.monotonic() - started < 30  # kafka-python alone would retry the refused handshake for 30 s
    assert_one_error_line(
        done, f"Kafka at {kafka_broker.bootstrap} (SASL_PLAINTEXT)", "IllegalSaslStateError", secrets=(KAFKA_SECRET,)
    )


def test_serve_with_its_metrics_port_taken_is_one_line(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    from anomaly.store import migrate

    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.upgrade(url=url)
    register(url, "pumps", tiny_models["series"])
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_anomaly(
            "serve",
            "--topic",
            "t",
            "--model",
            "pumps",
            "--bootstrap-servers",
            "127.0.0.1:1",
            "--metrics-port",
            port,
            cwd=tmp_path,
            env={"ANOMALY_DATABASE_URL": url},
        )
    assert_one_error_line(done, f"port {port}", "Address already in use", "--metrics-port", json_logs=True)
