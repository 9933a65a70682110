# The anomaly image: `anomaly serve` by default; any other `anomaly` command as arguments.
#
#   docker build -t anomaly .                                           CPU TensorFlow (default)
#   docker build -t anomaly-gpu --build-arg TENSORFLOW="tensorflow[and-cuda]==2.21.0" .   NVIDIA GPU
#
# Two stages: the build stage installs the pinned set (docker/requirements.txt) and the package
# into a virtual environment; the runtime stage copies only that environment and runs as a
# non-root user, so neither pip's caches nor build tools ship.
ARG PYTHON=3.11.7-slim-bookworm

FROM python:${PYTHON} AS build
ARG TENSORFLOW=tensorflow-cpu==2.21.0
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/anomaly
WORKDIR /src
COPY docker/requirements.txt docker/requirements.txt
RUN /opt/anomaly/bin/pip install --require-virtualenv -r docker/requirements.txt "${TENSORFLOW}"
COPY pyproject.toml setup.py README.md ./
COPY anomaly anomaly
COPY plugins plugins
COPY migrations migrations
# The extras the stack's services need: stream for `serve`, postgres for its database. --no-deps:
# they and the core are already installed from the pinned set above (tests/test_compose.py checks it).
RUN /opt/anomaly/bin/pip install --require-virtualenv --no-deps ".[stream,postgres]"

FROM python:${PYTHON}
RUN useradd --system --uid 10001 --create-home --home-dir /home/anomaly anomaly \
    && mkdir /models && chown anomaly:anomaly /models
COPY --from=build /opt/anomaly /opt/anomaly
ENV PATH=/opt/anomaly/bin:$PATH KERAS_BACKEND=tensorflow PYTHONUNBUFFERED=1
USER anomaly
WORKDIR /home/anomaly
# /metrics and /healthz ([serve] metrics_port).
EXPOSE 9400
ENTRYPOINT ["anomaly"]
CMD ["serve"]
