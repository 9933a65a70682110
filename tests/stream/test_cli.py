"""The serve command's option handling and Kafka settings, without a broker."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from anomaly.cli.stream import _topic_models
from anomaly.errors import AnomalyError
from anomaly.stream.config import BOOTSTRAP_ENV, DEFAULT_BOOTSTRAP, kafka_settings


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
