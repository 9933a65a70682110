"""Secure connections to a real broker: SASL_PLAINTEXT with SCRAM-SHA-512 and SSL with a test CA.

One broker of this module's own (scripts/kafka.sh with its secure listeners, in a temporary home
that holds its CA, client certificate and passwords) serves every test here. `anomaly produce` and
`anomaly serve` run as an operator runs them, and everything they print, the scorer's /metrics and
`anomaly config show` are searched for each password, wherever it was given: in the TOML, in an
environment variable or in a ``..._FILE``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import pytest
from sqlalchemy.engine import URL, make_url

from tests.conftest import write_series
from tests.kafka_broker import KafkaBroker, KafkaBrokerError
from tests.stream.support import PG_ENV, register, stored, wait_until
from tests.test_cli_errors import assert_one_error_line, run_anomaly

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.timeout(300)]

# A line of the CLI's -v log (its logging.basicConfig format).
TEXT_LOG = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")
DB_SECRET = "db-Pw-8817"
UI_SECRET = "ui-Tok-2290"
WRONG_SECRET = "wrong-Pw-6604"
READINGS = 24


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


class Secure(NamedTuple):
    """The secure broker and the folder of its CA, client certificate and passwords."""

    broker: KafkaBroker
    secrets: Path

    def secret(self, name: str) -> str:
        return (self.secrets / name).read_text().strip()


@pytest.fixture(scope="module")
def secure_broker(kafka_broker: KafkaBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secure]:
    """A second broker with SASL_PLAINTEXT (SCRAM) and SSL listeners, on the shared broker's jars."""
    home = tmp_path_factory.mktemp("secure-kafka")
    shared_home = Path(os.environ.get("ANOMALY_KAFKA_HOME", Path.home() / ".cache" / "anomaly" / "kafka"))
    (home / "libs").symlink_to(shared_home / "libs")
    plain, controller, sasl, ssl = _free_ports(4)
    broker = KafkaBroker(
        env={
            "ANOMALY_KAFKA_HOME": str(home),
            "ANOMALY_KAFKA_PORT": str(plain),
            "ANOMALY_KAFKA_CONTROLLER_PORT": str(controller),
            "ANOMALY_KAFKA_SASL_PORT": str(sasl),
            "ANOMALY_KAFKA_SSL_PORT": str(ssl),
            "ANOMALY_KAFKA_PARTITIONS": "1",
        }
    )
    try:
        broker.start()
    except KafkaBrokerError as exc:
        pytest.fail(f"the secure broker did not start: {exc}")
    yield Secure(broker, home / "secrets")
    broker.stop()


@pytest.fixture(scope="module")
def series_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_series(tmp_path_factory.mktemp("series") / "pump.csv", steps=READINGS)


@pytest.fixture
def scorer_db(pg_db: str, tiny_models: dict[str, Path]) -> str:
    """The test database with the tiny series model registered, by a URL whose password is DB_SECRET.

    The URL goes through the server's Unix socket, which trusts local users: the password is
    carried everywhere a real one would be, and ignored by the server.
    """
    register(pg_db, "pumps", tiny_models["series"])
    url = make_url(pg_db)
    query = {"host": PG_ENV["ANOMALY_PG_DIR"], "port": str(url.port)}
    socket_url = URL.create(url.drivername, url.username, DB_SECRET, database=url.database, query=query)
    return socket_url.render_as_string(hide_password=False)


def _sasl_toml(secure: Secure, password: str | None) -> str:
    line = f'sasl_plain_password = "{password}"\n' if password else ""
    return (
        f'[kafka]\nbootstrap_servers = "{secure.broker.listener("sasl")}"\nsecurity_protocol = "SASL_PLAINTEXT"\n'
        f'sasl_mechanism = "SCRAM-SHA-512"\nsasl_plain_username = "anomaly"\n{line}'
    )


def _ssl_toml(secure: Secure, cafile: Path, key_password: str | None = None) -> str:
    secrets = secure.secrets
    line = f'ssl_password = "{key_password}"\n' if key_password else ""
    return (
        f'[kafka]\nbootstrap_servers = "{secure.broker.listener("ssl")}"\nsecurity_protocol = "SSL"\n'
        f'ssl_cafile = "{cafile}"\nssl_certfile = "{secrets / "client.pem"}"\n'
        f'ssl_keyfile = "{secrets / "client.key"}"\n{line}'
    )


def _serve(cwd: Path, env: dict[str, str], topic: str) -> subprocess.Popen[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("ANOMALY_")}
    command = [sys.executable, "-m", "anomaly", "-v", "serve", "--topic", topic, "--model", "pumps"]
    command += ["--metrics-port", "0", "--idle-timeout", "5", "--no-alerts", "--group", f"{topic}-scorer"]
    return subprocess.Popen(
        command, cwd=cwd, env={**clean, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _records(stderr: str) -> list[dict]:
    records = []
    for line in stderr.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _metrics_port(process: subprocess.Popen[str], lines: list[str]) -> int:
    """Read serve's stderr until it logs the metrics port (the lines read are kept in ``lines``)."""
    assert process.stderr is not None
    for line in process.stderr:
        lines.append(line)
        if '"metrics on /metrics and /healthz"' in line:
            return int(json.loads(line)["port"])
    raise AssertionError("serve ended before it served /metrics:\n" + "".join(lines))


def _produce_and_serve(secure: Secure, cwd: Path, env: dict[str, str], url: str, series: Path) -> str:
    """Produce the readings and score them over the configured listener; all the output, /metrics included."""
    topic = secure.broker.create_topic(partitions=1, prefix="secure")
    produced = run_anomaly("-v", "produce", series, "--topic", topic, cwd=cwd, env=env)
    assert produced.returncode == 0, produced.stderr
    assert f"sent {READINGS} messages" in produced.stdout
    process = _serve(cwd, env, topic)
    lines: list[str] = []
    try:
        port = _metrics_port(process, lines)
        consumed = f'anomaly_stream_messages_consumed_total{{topic="{topic}"}} {READINGS}.0'
        metrics = ""

        def scraped() -> bool:
            nonlocal metrics
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
                metrics = response.read().decode()
            return consumed in metrics or process.poll() is not None

        wait_until(scraped, 60, "every reading consumed", every_s=0.2)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, "".join(lines) + err
    assert consumed in metrics, metrics
    assert len(stored(url, topic)) == READINGS, stored(url, topic)
    shown = run_anomaly("config", "show", cwd=cwd, env=env)
    assert shown.returncode == 0 and "***" in shown.stdout, shown.stderr
    return "\n".join([produced.stdout, produced.stderr, out, "".join(lines), err, metrics, shown.stdout])


def _assert_no_secret(output: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in output, f"{secret!r} shows in the output"


def test_produce_and_serve_over_sasl_scram(
    secure_broker: Secure, scorer_db: str, series_csv: Path, tmp_path: Path
) -> None:
    password = secure_broker.secret("sasl.password")
    (tmp_path / "anomaly.toml").write_text(_sasl_toml(secure_broker, password))
    (tmp_path / "db-url").write_text(scorer_db + "\n")
    env = {"ANOMALY_DATABASE_URL_FILE": str(tmp_path / "db-url"), "ANOMALY_UI_TOKEN": UI_SECRET}
    output = _produce_and_serve(secure_broker, tmp_path, env, scorer_db, series_csv)
    _assert_no_secret(output, password, DB_SECRET, UI_SECRET)


def test_produce_and_serve_over_ssl_with_a_client_certificate(
    secure_broker: Secure, scorer_db: str, series_csv: Path, tmp_path: Path
) -> None:
    secrets = secure_broker.secrets
    (tmp_path / "anomaly.toml").write_text(
        _ssl_toml(secure_broker, secrets / "ca.pem") + f'[ui]\ntoken = "{UI_SECRET}"\n'
    )
    env = {"ANOMALY_DATABASE_URL": scorer_db, "ANOMALY_KAFKA_SSL_PASSWORD_FILE": str(secrets / "client.password")}
    output = _produce_and_serve(secure_broker, tmp_path, env, scorer_db, series_csv)
    _assert_no_secret(output, secure_broker.secret("client.password"), DB_SECRET, UI_SECRET)


@pytest.fixture(scope="module")
def untrusted_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA certificate of a CA that signed nothing the broker holds."""
    folder = tmp_path_factory.mktemp("other-ca")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + ["-keyout", str(folder / "ca.key"), "-out", str(folder / "ca.pem"), "-days", "1", "-subj", "/CN=other"],
        check=True,
        capture_output=True,
    )
    return folder / "ca.pem"


def _timed(
    processes: dict[str, subprocess.Popen[str]], outputs: Path, timeout_s: float
) -> dict[str, tuple[float, str, str]]:
    """Wait for every process; (the time it ended, stdout, stderr) by name, read from ``outputs/NAME.out|err``."""
    ended: dict[str, tuple[float, str, str]] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while len(ended) < len(processes):
            assert time.monotonic() < deadline, f"still running after {timeout_s}s: {set(processes) - set(ended)}"
            for name, process in processes.items():
                if name not in ended and process.poll() is not None:
                    read = [(outputs / f"{name}.{kind}").read_text() for kind in ("out", "err")]
                    ended[name] = (time.time(), read[0], read[1])
            time.sleep(0.05)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return ended


def test_a_wrong_password_or_an_untrusted_ca_is_one_line_within_seconds(
    secure_broker: Secure, scorer_db: str, untrusted_ca: Path, tmp_path: Path
) -> None:
    """A wrong password (produce) and an untrusted CA (serve): each one error line naming what was refused.

    One run of each mistake, side by side, covers both commands and both modes (each command meets
    the other mistake through the same client configuration). Each wait is timed from the client's
    first connection attempt (produce's -v log line; serve's record saying /metrics is up, just
    before it connects): on a busy machine, starting Python and loading models takes longer.
    """
    key_password = secure_broker.secret("client.password")
    configs = {"sasl": _sasl_toml(secure_broker, None), "ssl": _ssl_toml(secure_broker, untrusted_ca, key_password)}
    env = {"ANOMALY_DATABASE_URL": scorer_db, "ANOMALY_KAFKA_SASL_PLAIN_PASSWORD": WRONG_SECRET}
    clean = {key: value for key, value in os.environ.items() if not key.startswith("ANOMALY_")}
    for mode, config in configs.items():
        (tmp_path / f"{mode}.toml").write_text(config)
    # kafka-python reads the login's refusal, or only the broker hanging up after it: either is named.
    refused = {"sasl": ("(SASL_PLAINTEXT)",), "ssl": ("(SSL)", "CERTIFICATE_VERIFY_FAILED")}
    runs = {
        "produce-sasl": ["-v", "produce", "--digits", "--topic", "refused"],
        "serve-ssl": ["serve", "--topic", "refused", "--model", "pumps", "--metrics-port", "0"],
    }
    processes = {}
    for name, args in runs.items():
        mode = name.split("-")[1]
        # Files, not pipes: a pipe nobody reads until the end would fill with serve's log and block it.
        with open(tmp_path / f"{name}.out", "w") as out, open(tmp_path / f"{name}.err", "w") as err:
            processes[name] = subprocess.Popen(
                [sys.executable, "-m", "anomaly", "--config", f"{mode}.toml", *args],
                cwd=tmp_path,
                env={**clean, **env},
                stdout=out,
                stderr=err,
            )
    for name, (at, out, err) in _timed(processes, tmp_path, 120).items():
        command, mode = name.split("-")
        if command == "serve":
            (record,) = [r for r in _records(err) if r["msg"] == "metrics on /metrics and /healthz"]
            since = datetime.fromisoformat(record["ts"]).timestamp()
        else:  # -v: kafka-python's log lines, timed from its first connection attempt
            logged = [line for line in err.splitlines() if TEXT_LOG.match(line)]
            first = next(line for line in logged if "Attempting bootstrap" in line)
            since = datetime.strptime(first[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            err = "".join(line + "\n" for line in err.splitlines() if line not in logged)
        done = subprocess.CompletedProcess([], processes[name].returncode, out, err)
        line = assert_one_error_line(
            done,
            *refused[mode],
            "Unable to bootstrap",
            secrets=(WRONG_SECRET, key_password, DB_SECRET),
            json_logs=True,
        )
        if mode == "sasl":
            assert "SaslAuthenticationFailedError" in line or "after a refused login" in line, line
        # The 10 s first-connection wait and the exit of a busy process; kafka-python alone waits 30 s.
        assert at - since < 25, f"{name} took {at - since:.1f}s: {line}"


def test_a_wrong_client_key_password_is_one_line_naming_the_key(secure_broker: Secure, tmp_path: Path) -> None:
    (tmp_path / "anomaly.toml").write_text(_ssl_toml(secure_broker, secure_broker.secrets / "ca.pem", WRONG_SECRET))
    done = run_anomaly("produce", "--digits", "--topic", "refused", cwd=tmp_path)
    assert_one_error_line(done, "kafka.ssl_keyfile", "client.key", "check kafka.ssl_password", secrets=(WRONG_SECRET,))


def test_an_unknown_security_protocol_is_one_line_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "anomaly.toml").write_text('[kafka]\nsecurity_protocol = "TLS"\n')
    done = run_anomaly("produce", "--digits", "--topic", "t", cwd=tmp_path)
    assert_one_error_line(done, "anomaly.toml: kafka.security_protocol:", "'SASL_SSL'", "(got 'TLS')")
