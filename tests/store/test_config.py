"""Where the database URL comes from, and that passwords never leak from it."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import quote

import pytest

from anomaly.errors import AnomalyError
from anomaly.store.config import (
    CONFIG_ENV,
    DEFAULT_URL,
    URL_ENV,
    checked_url,
    database_url,
    hide_password,
    scrub,
    url_secrets,
)
from anomaly.store.engine import create_engine_for, get_engine

SECRET = "s3cret-Pw"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(URL_ENV, raising=False)
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.chdir(tmp_path)


def test_default_is_a_sqlite_file_in_the_working_directory() -> None:
    assert database_url() == DEFAULT_URL


def test_config_file_in_working_directory(tmp_path: Path) -> None:
    (tmp_path / "anomaly.toml").write_text('[database]\nurl = "sqlite:///from-file.db"\n')
    assert database_url() == "sqlite:///from-file.db"


def test_environment_beats_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "anomaly.toml").write_text('[database]\nurl = "sqlite:///from-file.db"\n')
    monkeypatch.setenv(URL_ENV, "sqlite:///from-env.db")
    assert database_url() == "sqlite:///from-env.db"


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "elsewhere.toml"
    config.write_text('[database]\nurl = "postgresql+psycopg://u:p@db/x"\n')
    monkeypatch.setenv(CONFIG_ENV, str(config))
    assert database_url() == "postgresql+psycopg://u:p@db/x"


def test_config_file_without_database_section_uses_default(tmp_path: Path) -> None:
    (tmp_path / "anomaly.toml").write_text('[kafka]\nclient_id = "x"\n')
    assert database_url() == DEFAULT_URL


@pytest.mark.parametrize(
    "content, message",
    [
        ("[database\nurl=", "cannot read config file"),
        ("[database]\nurl = 5\n", "database.url: input should be a valid string"),
        ("[other]\nkey = 1\n", "unknown setting other"),
    ],
)
def test_bad_config_file_is_a_user_error(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "anomaly.toml").write_text(content)
    with pytest.raises(AnomalyError, match=message):
        database_url()


def test_missing_config_path_is_a_user_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "nope.toml"))
    with pytest.raises(AnomalyError, match="not a file"):
        database_url()


def test_unparseable_url_is_reported_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(URL_ENV, f"not a url://user:{SECRET}@host/db")
    with pytest.raises(AnomalyError) as caught:
        database_url()
    assert SECRET not in str(caught.value)
    assert "***" in str(caught.value)


def test_hide_password() -> None:
    shown = hide_password(f"postgresql+psycopg://anomaly:{SECRET}@db.example:5432/prod")
    assert shown == "postgresql+psycopg://anomaly:***@db.example:5432/prod"
    assert hide_password("sqlite:///anomaly.db") == "sqlite:///anomaly.db"


def test_connection_failure_hides_password_in_error_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    # Nothing listens on port 1: connecting fails fast with the driver's own message.
    url = f"postgresql+psycopg://anomaly:{SECRET}@127.0.0.1:1/anomaly"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AnomalyError) as caught:
        get_engine(url)
    message = str(caught.value)
    assert "127.0.0.1:1" in message and "anomaly:***@" in message
    assert SECRET not in message
    assert "database postgresql+psycopg://anomaly:***@127.0.0.1:1/anomaly" in caplog.text
    assert SECRET not in caplog.text


def test_engine_log_line_hides_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="anomaly.store.engine")
    create_engine_for(f"postgresql+psycopg://anomaly:{SECRET}@127.0.0.1:1/anomaly").dispose()
    assert "anomaly:***@127.0.0.1:1" in caplog.text
    assert SECRET not in caplog.text


# Every way a secret sits in a URL, with the secret as the server knows it; each must be hidden
# wherever the URL or a message about it is shown.
SECRET_URLS = {
    "plain": (f"postgresql+psycopg://anomaly:{SECRET}@db:5432/prod", SECRET),
    "at-sign": (f"postgresql+psycopg://anomaly:p@ss{SECRET}@db:5432/prod", f"p@ss{SECRET}"),
    "at-then-colon": (f"postgresql+psycopg://anomaly:p@ss:{SECRET}@db/prod", f"p@ss:{SECRET}"),
    "colon-and-slash": (f"postgresql+psycopg://anomaly:a:b/{SECRET}@db/prod", f"a:b/{SECRET}"),
    "percent-escaped": (f"postgresql+psycopg://anomaly:{quote('p@s:s/' + SECRET, safe='')}@db/prod", f"p@s:s/{SECRET}"),
    "query": (f"postgresql+psycopg://anomaly@db/prod?sslmode=require&password={SECRET}", SECRET),
    "query-sslpassword": (f"postgresql+psycopg://anomaly@db/prod?sslpassword={SECRET}", SECRET),
    "bad-port": (f"postgresql://anomaly:{SECRET}@db:abc/prod", SECRET),
    "unparseable": (f"not a url://anomaly:{SECRET}@db/prod", SECRET),
}


@pytest.mark.parametrize(("url", "password"), SECRET_URLS.values(), ids=SECRET_URLS.keys())
def test_hide_password_in_every_url_form(url: str, password: str) -> None:
    shown = hide_password(url)
    assert SECRET not in shown and "***" in shown
    assert "db" in shown


@pytest.mark.parametrize(("url", "password"), SECRET_URLS.values(), ids=SECRET_URLS.keys())
def test_url_secrets_cover_the_password_as_written_and_decoded(url: str, password: str) -> None:
    message = f"driver: password {password} (written {quote(password, safe='')}) refused"
    assert SECRET not in scrub(message, url_secrets(url))


@pytest.mark.parametrize(
    ("url", "words"),
    [
        (f"postgresql://anomaly:p@ss{SECRET}@db/prod", "write each '@' in the password as %40"),
        (f"postgresql://anomaly:p@ss:{SECRET}@db/prod", "write each '@' in the password as %40"),
        (f"postgresql://anomaly:{SECRET}@db:abc/prod", "port must be a number"),
        (f"postgresql://anomaly:{SECRET}@db:70000/prod", "port must be a number"),
    ],
)
def test_misread_urls_are_refused_before_connecting(url: str, words: str) -> None:
    with pytest.raises(AnomalyError, match=words) as caught:
        checked_url(url)
    assert SECRET not in str(caught.value) and SECRET[2:] not in str(caught.value)


def test_postgres_scheme_and_bare_postgresql_use_psycopg() -> None:
    assert (
        checked_url(f"postgres://u:{SECRET}@db/x?sslmode=require")
        == f"postgresql+psycopg://u:{SECRET}@db/x?sslmode=require"
    )
    assert checked_url("postgresql://u@db/x") == "postgresql+psycopg://u@db/x"
    assert checked_url("postgresql+psycopg2://u@db/x") == "postgresql+psycopg2://u@db/x"
    assert checked_url("sqlite:///a@b.db") == "sqlite:///a@b.db"


def test_unknown_dialect_is_a_user_error() -> None:
    with pytest.raises(AnomalyError, match="no dialect or driver 'postgress'") as caught:
        create_engine_for(f"postgress://u:{SECRET}@db/x")
    assert SECRET not in str(caught.value)


def test_the_cli_masks_configured_secrets_in_any_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from anomaly.cli import _masked

    monkeypatch.setenv(URL_ENV, f"postgresql+psycopg://u:{SECRET}@db/x")
    (tmp_path / "anomaly.toml").write_text('[kafka]\nsasl_plain_password = "kafka-Pw-42"\n')
    assert _masked(f"boom {SECRET} and kafka-Pw-42") == "boom *** and ***"
