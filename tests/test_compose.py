"""compose.yaml and the Dockerfile, checked without a container engine: the Compose Specification, and
no drift from the configuration reference, the settings model and the servers the tests run against.

The schema and ``docker-compose config`` come from Debian's docker-compose package (scripts/setup.sh
installs it). Without it these checks skip locally; under CI (``CI`` set) they fail instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import tomllib
import yaml
from packaging.requirements import Requirement

from anomaly import settings
from anomaly.stream.alerts import DEFAULT_ALERTS_TOPIC
from anomaly.stream.deadletter import dlq_topic

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "compose.yaml"
SCHEMA = Path("/usr/lib/python3/dist-packages/compose/config/compose_spec.json")
REFERENCE = (ROOT / "docs" / "configuration.md").read_text()
DOCKERFILE = (ROOT / "Dockerfile").read_text()
STACK = yaml.safe_load(COMPOSE.read_text())
SERVICES = STACK["services"]


def _needs_docker_compose() -> None:
    if shutil.which("docker-compose") and SCHEMA.is_file():
        return
    message = "Debian's docker-compose is not installed: run scripts/setup.sh"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _schema_errors(stack: dict) -> list[str]:
    schema = yaml.safe_load(SCHEMA.read_text())  # JSON is YAML; no network: the schema's $refs are local
    validator = jsonschema.Draft201909Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(stack)]


def _compose_config(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker-compose", "--project-directory", str(folder), "-f", str(folder / "compose.yaml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_file_follows_the_compose_specification(tmp_path: Path) -> None:
    _needs_docker_compose()
    assert _schema_errors(STACK) == []
    done = _compose_config(ROOT)
    assert done.returncode == 0, done.stderr


def test_the_validators_refuse_a_broken_compose_file(tmp_path: Path) -> None:
    _needs_docker_compose()
    broken = yaml.safe_load(COMPOSE.read_text())
    broken["services"]["scorer"]["helthcheck"] = broken["services"]["scorer"].pop("healthcheck")
    assert any("helthcheck" in error for error in _schema_errors(broken))
    dangling = yaml.safe_load(COMPOSE.read_text())
    dangling["volumes"].pop("models")  # used by the scorer, declared nowhere: only compose itself sees it
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(dangling))
    done = _compose_config(tmp_path)
    assert done.returncode != 0 and "models" in done.stderr


def _environment(service: dict) -> dict[str, str]:
    return {key: str(value) for key, value in service.get("environment", {}).items()}


def _our_variables() -> set[str]:
    used = {name for service in SERVICES.values() for name in _environment(service) if name.startswith("ANOMALY_")}
    return used | set(re.findall(r"\bANOMALY_[A-Z0-9_]+", DOCKERFILE))


def test_every_anomaly_variable_in_the_stack_is_a_documented_setting() -> None:
    known = {name for key in settings.keys() for name in settings.env_names(key)}
    variables = _our_variables()
    assert variables, "the stack configures the scorer through ANOMALY_* variables"
    assert variables <= known, variables - known
    container_section = REFERENCE.split("## The container stack", 1)[1]
    for name in variables:
        assert f"`{name}`" in container_section, name


def test_the_scorer_settings_in_the_stack_are_valid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    scorer = _environment(SERVICES["scorer"])
    (tmp_path / "database-url").write_text("postgresql://anomaly:pw@postgres:5432/anomaly\n")
    monkeypatch.chdir(tmp_path)
    for name in ("ANOMALY_CONFIG", *(n for key in settings.keys() for n in settings.env_names(key))):
        monkeypatch.delenv(name, raising=False)
    for name, value in scorer.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ANOMALY_DATABASE_URL_FILE", str(tmp_path / "database-url"))
    loaded = settings.load().settings
    assert loaded.kafka.bootstrap_servers == "kafka:9092"
    assert loaded.database.url.endswith("@postgres:5432/anomaly")
    created = set(_environment(SERVICES["topics"])["TOPICS"].split(","))
    assert {*loaded.serve.topics, *map(dlq_topic, loaded.serve.topics), DEFAULT_ALERTS_TOPIC} <= created


def test_ports_agree_between_settings_dockerfile_compose_and_reference() -> None:
    scorer = SERVICES["scorer"]
    port = int(_environment(scorer)["ANOMALY_SERVE_METRICS_PORT"])
    assert port == settings.ServeConfig().metrics_port
    assert re.findall(r"^EXPOSE (\d+)$", DOCKERFILE, flags=re.MULTILINE) == [str(port)]
    assert scorer["expose"] == [str(port)]
    assert f"127.0.0.1:{port}/healthz" in " ".join(scorer["healthcheck"]["test"])
    assert "ports" not in scorer, "replicas would collide on a published host port"
    assert f"`{port}`" in REFERENCE and "`9092`" in REFERENCE and "`5432`" in REFERENCE
    assert _environment(SERVICES["kafka"])["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"


def test_volumes_are_declared_used_and_documented() -> None:
    used = {mount.split(":")[0] for service in SERVICES.values() for mount in service.get("volumes", [])}
    assert used == set(STACK["volumes"]) == {"database", "models", "broker-data"}
    for volume in used:
        assert f"| `{volume}` |" in REFERENCE, volume
    assert "models:/models" in SERVICES["scorer"]["volumes"]
    assert "mkdir /models && chown anomaly:anomaly /models" in DOCKERFILE


def test_every_service_is_documented_and_healthy_or_a_one_shot_the_scorer_waits_for() -> None:
    waits_for = SERVICES["scorer"]["depends_on"]
    for name, service in SERVICES.items():
        assert f"| `{name}` |" in REFERENCE, name
        if service.get("restart") == "no":
            assert waits_for[name]["condition"] == "service_completed_successfully", name
        else:
            assert service["healthcheck"]["test"], name
    assert SERVICES["scorer"]["deploy"]["replicas"] >= 2


def test_services_run_what_the_tests_run_against_the_real_servers() -> None:
    pom = (ROOT / "scripts" / "kafka" / "pom.xml").read_text()
    kafka_version = re.search(r"<artifactId>kafka_2\.13</artifactId>\s*<version>([^<]+)</version>", pom)[1]
    assert SERVICES["kafka"]["image"] == SERVICES["topics"]["image"] == f"apache/kafka:{kafka_version}"
    assert "/usr/lib/postgresql/15/bin" in (ROOT / "scripts" / "postgres.sh").read_text()
    assert SERVICES["postgres"]["image"].startswith("postgres:15.")
    # tests/store/test_cli.py runs `db upgrade` on PostgreSQL; tests/stream/test_failures.py runs `serve`
    # on the broker, its options here coming from the settings that test_settings.py maps onto them.
    assert SERVICES["migrate"]["command"] == ["db", "upgrade"]
    assert SERVICES["scorer"]["command"] == ["serve"]
    assert re.search(r'^ENTRYPOINT \["anomaly"\]$', DOCKERFILE, flags=re.MULTILINE)
    # Both build the one image, so neither is pulled from a registry that does not have it.
    assert SERVICES["migrate"]["image"] == SERVICES["scorer"]["image"]
    assert SERVICES["migrate"]["build"] == SERVICES["scorer"]["build"] == "."


def _requirements(extras: list[str]) -> list[Requirement]:
    """The core dependencies and those of ``extras``, an extra naming others (``anomaly-gan[store]``) expanded."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = [Requirement(text) for text in project["dependencies"]]
    pending = list(extras)
    while pending:
        for requirement in map(Requirement, project["optional-dependencies"][pending.pop()]):
            if requirement.name == project["name"]:
                pending += requirement.extras
            else:
                found.append(requirement)
    return found


def test_dockerfile_is_multi_stage_non_root_and_installs_the_pinned_set() -> None:
    assert len(re.findall(r"^FROM ", DOCKERFILE, flags=re.MULTILINE)) >= 2
    users = re.findall(r"^USER (\S+)$", DOCKERFILE, flags=re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert "pip install --require-virtualenv -r docker/requirements.txt" in DOCKERFILE
    pins = {}
    for line in (ROOT / "docker" / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name] = version
    tensorflow = re.search(r"^ARG TENSORFLOW=([\w-]+)==(\S+)$", DOCKERFILE, flags=re.MULTILINE)
    pins[tensorflow[1]] = tensorflow[2]
    extras = re.search(r'--no-deps "\.\[([\w,]+)\]"$', DOCKERFILE, flags=re.MULTILINE)
    assert extras, "the image installs the package with the extras its services need"
    python = re.search(r"^ARG PYTHON=(\d+\.\d+)", DOCKERFILE, flags=re.MULTILINE)
    assert python, "the Dockerfile names its Python version"
    for requirement in _requirements(extras[1].split(",")):
        if requirement.marker and not requirement.marker.evaluate({"python_version": python[1]}):
            continue  # not installed on the image's Python (tomli, before 3.11)
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pins, f"{name} is a dependency but not pinned in docker/requirements.txt"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} does not satisfy {requirement}"
        for extra in requirement.extras:
            assert f"{name}-{extra}" in pins, f"{name}[{extra}]"
