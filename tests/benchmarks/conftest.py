"""The stream suite's smoke run needs the real Kafka broker the stream tests use."""

from tests.stream.conftest import kafka_broker  # noqa: F401
