#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine: the Python package with its
# dependencies and every extra (store, postgres, stream, ui), Debian's PostgreSQL server (store tests),
# Debian's docker-compose (compose.yaml's validation), Debian's chromium and chromium-driver (the
# review pages' browser tests) and the Kafka broker's jars (stream tests).
# Safe to run again: each step is skipped when its work is already done.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

"$PYTHON" -m pip install -q --disable-pip-version-check -e ".[all,test]"

if ! [ -x /usr/lib/postgresql/15/bin/initdb ] && ! command -v initdb >/dev/null 2>&1; then
    echo "installing PostgreSQL (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q postgresql
fi

# tests/test_compose.py validates compose.yaml with its Compose Specification schema and `config`.
if ! command -v docker-compose >/dev/null 2>&1; then
    echo "installing docker-compose (Debian package, for validating compose.yaml)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends docker-compose
fi

# tests/ui drive Debian's headless chromium through its chromedriver (Selenium; nothing downloaded).
if ! [ -x /usr/bin/chromium ] || ! [ -x /usr/bin/chromedriver ]; then
    echo "installing chromium and chromium-driver (Debian packages, for the review pages' browser tests)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends chromium chromium-driver
fi

if [ -f scripts/kafka.sh ]; then
    bash scripts/kafka.sh fetch
fi
