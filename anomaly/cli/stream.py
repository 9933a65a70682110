"""``anomaly serve`` (score Kafka topics into the store) and ``anomaly produce`` (feed a topic)."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from pathlib import Path
from typing import Any

import click

from anomaly.errors import AnomalyError

# kafka-python waits 30 s for a broker by default, even after a refused login or certificate; an
# operator starting serve or produce should hear within seconds (raise it with bootstrap_timeout_ms in
# [kafka]). Only the first connection waits so: a running client rides out broker restarts.
BOOTSTRAP_TIMEOUT_MS = 10_000


def _topic_models(
    topics: tuple[str, ...], values: tuple[str, ...], option: str = "--model", required: bool = True
) -> dict[str, str]:
    """``--model NAME`` serves every topic; ``--model TOPIC=NAME`` serves one (the two combine); same for --decoder."""
    default = [v for v in values if "=" not in v]
    if len(default) > 1:
        raise AnomalyError(f"give one {option} NAME for all topics, or TOPIC=NAME per topic (got {', '.join(default)})")
    routed = dict(v.split("=", 1) for v in values if "=" in v)
    unknown = sorted(set(routed) - set(topics))
    if unknown:
        raise AnomalyError(f"{option} names topic(s) {', '.join(unknown)} that are not in --topic")
    result = {t: routed.get(t) or (default[0] if default else None) for t in topics}
    missing = [t for t, name in result.items() if not name]
    if missing and required:
        raise AnomalyError(f"no {option} for topic(s) {', '.join(missing)}")
    return {t: name for t, name in result.items() if name}


class _ConfiguredCommand(click.Command):
    """A command whose option defaults are its ``[serve]`` configuration, so flags override the file and env."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        from anomaly import settings

        extra.setdefault("default_map", settings.load().settings.serve.model_dump())
        return super().make_context(info_name, args, parent, **extra)


@click.command("serve", cls=_ConfiguredCommand)
@click.option(
    "--topic", "topics", multiple=True, required=True, help="Topic to score (repeat for several) [or [serve] topics]."
)
@click.option(
    "--model",
    "models",
    multiple=True,
    required=True,
    help="Registered model NAME serving every topic, or TOPIC=NAME for one topic; its active version is "
    "used [or [serve] models].",
)
@click.option(
    "--bootstrap-servers",
    default=None,
    help="Kafka bootstrap servers [default: [kafka] bootstrap_servers, 127.0.0.1:19092].",
)
@click.option("--group", show_default=True, help="Consumer group id.")
@click.option(
    "--instance-id",
    default=None,
    help="Static group membership: a restarted scorer with the same id takes its partitions back at once "
    "instead of waiting out the session timeout (45 s).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    show_default=True,
    help="HTTP port for /metrics and /healthz (0 picks a free port).",
)
@click.option("--alerts-topic", default="anomaly.alerts", show_default=True, help="Topic for anomaly alerts.")
@click.option("--no-alerts", is_flag=True, help="Do not produce alerts.")
@click.option(
    "--decoder", "decoder_args", multiple=True, help="Decoder NAME, or TOPIC=NAME (default by the model's input)."
)
@click.option(
    "--source", "sources", multiple=True, help="Accept only these sources (repeat); others are dead-lettered."
)
@click.option("--max-batch", type=click.IntRange(1), default=2000, show_default=True, help="Most messages per batch.")
@click.option(
    "--max-poll-interval-ms",
    type=click.IntRange(10_000),
    default=300_000,
    show_default=True,
    help="Kafka max_poll_interval_ms; batches are sized to score in a fifth of it.",
)
@click.option(
    "--model-check-interval",
    type=click.FloatRange(0.1),
    default=5.0,
    show_default=True,
    help="Seconds between registry checks for a newly active version.",
)
@click.option("--max-messages", type=click.IntRange(1), default=None, help="Stop after this many messages.")
@click.option("--idle-timeout", type=click.FloatRange(0.1), default=None, help="Stop after this many idle seconds.")
@click.option(
    "--payload/--no-payload", "store_payload", show_default=True, help="Store message payloads with the events."
)
@click.option(
    "--health-timeout",
    type=click.FloatRange(1),
    show_default=True,
    help="Seconds the broker may go unheard, fetches bring nothing while messages wait, or produces "
    "fail, before /healthz answers 503.",
)
@click.option(
    "--log-format",
    type=click.Choice(["json", "text"]),
    default="json",
    show_default=True,
    help="Log lines on stderr: JSON records or text for people.",
)
@click.option(
    "--scheduler/--no-scheduler",
    "run_schedule",
    default=False,
    show_default=True,
    help="Also run the retrain schedules (`anomaly retrain schedule`); on PostgreSQL one replica at a time does.",
)
@click.option(
    "--workers",
    type=click.IntRange(1),
    show_default=True,
    help="Scorer processes in the group on this machine, sharing its cores and the partitions; worker i "
    "serves on --metrics-port + i and has --instance-id ID-i [or [serve] workers].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the closing summary as JSON.")
def serve_command(
    topics: tuple[str, ...],
    models: tuple[str, ...],
    bootstrap_servers: str | None,
    group: str,
    instance_id: str | None,
    metrics_port: int,
    alerts_topic: str,
    no_alerts: bool,
    decoder_args: tuple[str, ...],
    sources: tuple[str, ...],
    max_batch: int,
    max_poll_interval_ms: int,
    model_check_interval: float,
    max_messages: int | None,
    idle_timeout: float | None,
    store_payload: bool,
    health_timeout: float,
    log_format: str,
    run_schedule: bool,
    workers: int,
    as_json: bool,
) -> None:
    """Score every message of the TOPICs once into the store; dead-letter bad ones, alert on anomalies.

    Runs until SIGTERM/SIGINT (which finish the batch, commit and close), --max-messages or --idle-timeout.
    """
    from anomaly.store.config import database_url
    from anomaly.stream.config import kafka_settings
    from anomaly.stream.consumer import ServeSettings
    from anomaly.stream.logs import use_json_logs
    from anomaly.stream.workers import combined, serve_one, supervise

    if log_format == "json":
        use_json_logs()
    else:
        logging.getLogger().setLevel(logging.INFO)
    bootstrap, client = kafka_settings(bootstrap_servers)
    client = {"bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS, **client}
    decoders = _topic_models(topics, decoder_args, "--decoder", required=False)
    settings = ServeSettings(
        topics=list(topics),
        models=_topic_models(topics, models),
        bootstrap_servers=bootstrap,
        group=group,
        instance_id=instance_id,
        client=client,
        decoders=decoders,
        alerts_topic=None if no_alerts else alerts_topic,
        sources=frozenset(sources) if sources else None,
        max_batch=max_batch,
        max_poll_interval_ms=max_poll_interval_ms,
        model_check_s=model_check_interval,
        max_messages=max_messages,
        idle_timeout_s=idle_timeout,
        store_payload=store_payload,
        health_timeout_s=health_timeout,
    )
    schedule_stop = threading.Event()
    try:
        if workers == 1:
            start_schedule = (lambda _scorer: _start_schedule(schedule_stop)) if run_schedule else None
            summary = dataclasses.asdict(serve_one(settings, None, metrics_port, on_ready=start_schedule))
        else:
            if run_schedule:
                _start_schedule(schedule_stop)
            summary = combined(supervise(settings, database_url(), metrics_port, workers, log_format))
    finally:
        schedule_stop.set()
    if as_json:
        click.echo(json.dumps(summary))
        return
    click.echo(
        f"consumed {summary['consumed']}, scored {summary['scored']}, rejected {summary['rejected']}, "
        f"anomalies {summary['anomalies']} in {summary['seconds']:.1f}s"
    )


def _start_schedule(stop: threading.Event) -> None:
    """Run the retrain schedules beside the scorer until ``stop``; each retrain trains in its own process,
    so scoring never waits (with --workers, one schedule in the parent for all of them)."""
    from anomaly.retrain.schedule import run_scheduler

    threading.Thread(target=run_scheduler, args=(stop,), name="retrain-scheduler", daemon=True).start()


@click.command("produce")
@click.argument("data", required=False, type=click.Path(path_type=Path))
@click.option("--topic", required=True, help="Topic to produce to.")
@click.option("--digits", "use_digits", is_flag=True, help="Send scikit-learn's bundled digits instead of DATA.")
@click.option("--bootstrap-servers", default=None, help="As for serve.")
@click.option("--split", default="test", show_default=True, help="Array of an NPZ series file to send.")
@click.option("--source", default=None, help="Source name (default: 'camera' for images, the file name for series).")
@click.option(
    "--rate", type=click.FloatRange(0.1), default=None, help="Messages per second (default: as fast as possible)."
)
@click.option("--limit", type=click.IntRange(1), default=None, help="Send at most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print what was sent as JSON.")
def produce_command(
    data: Path | None,
    topic: str,
    use_digits: bool,
    bootstrap_servers: str | None,
    split: str,
    source: str | None,
    rate: float | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """Stream a dataset to TOPIC in serve's formats: images as PNG bytes, series as one JSON reading per message."""
    from itertools import islice

    from kafka import KafkaProducer

    from anomaly.data.bundled import digits
    from anomaly.data.images import load_images
    from anomaly.data.series import load_series
    from anomaly.stream.config import kafka_settings, user_errors
    from anomaly.stream.produce import image_messages, reading_messages, send

    if use_digits == (data is not None):
        raise AnomalyError("give either DATA (an image folder or a series file) or --digits")
    if data is None:  # --digits
        messages = image_messages(digits(), source or "camera")
    elif data.is_dir():
        messages = image_messages(load_images(data), source or "camera")
    else:
        messages = reading_messages(load_series(data, split), source)
    bootstrap, client = kafka_settings(bootstrap_servers)
    with user_errors(bootstrap, client):
        producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            **{"bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS, **client},
        )
        try:
            sent = send(producer, topic, islice(messages, limit), rate)
        finally:
            producer.close()
    click.echo(json.dumps({"topic": topic, "sent": len(sent)}) if as_json else f"sent {len(sent)} messages to {topic}")


COMMANDS = [serve_command, produce_command]
