#!/usr/bin/env bash
# A single-node Apache Kafka broker (KRaft, broker + controller in one JVM) on loopback, for
# development, tests and CI.
#
#   scripts/kafka.sh fetch       download the broker jars with Maven (once; skipped when complete)
#   scripts/kafka.sh start       fetch if needed, format the log directory once, start, wait for the port
#   scripts/kafka.sh stop        SIGTERM, wait, then SIGKILL
#   scripts/kafka.sh status      exit 0 when the broker is running, 1 when not
#   scripts/kafka.sh bootstrap   print the bootstrap address, 127.0.0.1:PORT
#
# Environment:
#   ANOMALY_KAFKA_HOME             jars, data, logs, pid file   (default $HOME/.cache/anomaly/kafka)
#   ANOMALY_KAFKA_PORT             PLAINTEXT listener port      (default 59092)
#   ANOMALY_KAFKA_CONTROLLER_PORT  KRaft controller port        (default 59093)
#   ANOMALY_KAFKA_PARTITIONS       num.partitions for auto-created topics (default 3)
#   ANOMALY_KAFKA_JVM_OPTS         JVM options (default -Xmx512m -Xms256m -XX:TieredStopAtLevel=1
#                                  -XX:+UseSerialGC: small heap, and C1-only JIT, which halves
#                                  start-up on 2 cores with no loss of throughput measured there)
#   ANOMALY_KAFKA_START_TIMEOUT    seconds to wait for the port (default 60)
#   ANOMALY_KAFKA_STOP_TIMEOUT     seconds between SIGTERM and SIGKILL (default 30)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POM="$SCRIPT_DIR/kafka/pom.xml"
LOG4J_CONFIG="$SCRIPT_DIR/kafka/log4j.properties"

KAFKA_HOME="${ANOMALY_KAFKA_HOME:-$HOME/.cache/anomaly/kafka}"
PORT="${ANOMALY_KAFKA_PORT:-59092}"
CONTROLLER_PORT="${ANOMALY_KAFKA_CONTROLLER_PORT:-59093}"
PARTITIONS="${ANOMALY_KAFKA_PARTITIONS:-3}"
JVM_OPTS="${ANOMALY_KAFKA_JVM_OPTS:--Xmx512m -Xms256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC}"
START_TIMEOUT="${ANOMALY_KAFKA_START_TIMEOUT:-60}"
STOP_TIMEOUT="${ANOMALY_KAFKA_STOP_TIMEOUT:-30}"

LIBS="$KAFKA_HOME/libs"
DATA="$KAFKA_HOME/data"
LOG="$KAFKA_HOME/logs/server.log"
PROPERTIES="$KAFKA_HOME/server.properties"
PID_FILE="$KAFKA_HOME/kafka.pid"
# Written last by fetch; holds the pom's checksum, so a changed pom fetches again.
FETCH_STAMP="$LIBS/.fetched"

# Kafka logs through slf4j -> reload4j. Its Log4jController also pokes log4j2, which has no
# configuration here and would print a harmless "Reconfiguration failed" on every start.
JAVA_LOGGING=(-Dlog4j.configuration="file:$LOG4J_CONFIG" -Dlog4j2.statusLoggerLevel=OFF)

say() { echo "kafka.sh: $*"; }
die() { echo "kafka.sh: error: $*" >&2; exit 1; }

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
}

require() {
    command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed; $2"
}

check_number() {
    [[ "$2" =~ ^[0-9]+$ ]] || die "$1 must be a whole number, got '$2'"
}

# Serialise fetch/start/stop between concurrent callers (two test sessions, a developer and CI).
lock_home() {
    mkdir -p "$KAFKA_HOME"
    exec 9>"$KAFKA_HOME/.lock"
    flock 9
}

# Alive and not a zombie: a broker that died as our child, or under a PID 1 that never reaps,
# still answers kill -0.
alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    [[ -r "/proc/$1/stat" ]] || return 0
    read -r _ _ state _ <"/proc/$1/stat" || return 1
    [[ "$state" != Z ]]
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The pid of our broker when it is alive, else nothing. The command line must name this home's
# server.properties, so a recycled pid or a broker of another home never counts.
broker_pid() {
    local pid
    [[ -f "$PID_FILE" ]] || return 0
    pid="$(<"$PID_FILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    alive "$pid" || return 0
    if [[ -r "/proc/$pid/cmdline" ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $PROPERTIES" || return 0
    fi
    echo "$pid"
}

pom_checksum() {
    sha256sum "$POM" | cut -d' ' -f1
}

fetched() {
    [[ -f "$FETCH_STAMP" && "$(<"$FETCH_STAMP")" == "$(pom_checksum)" ]]
}

fetch() {
    if fetched; then
        say "jars already in $LIBS"
        return
    fi
    require mvn "install Maven (Debian: apt-get install maven)"
    require java "install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)"
    local staging="$KAFKA_HOME/libs.partial"
    rm -rf "$staging"
    say "fetching Kafka jars with Maven into $LIBS (needs Maven Central or a populated ~/.m2) ..."
    local output
    if ! output="$(mvn -q -B -f "$POM" dependency:copy-dependencies -DoutputDirectory="$staging" 2>&1)"; then
        echo "$output" >&2
        rm -rf "$staging"
        die "Maven could not resolve the Kafka jars (its output is above)"
    fi
    compgen -G "$staging/kafka_2.13-*.jar" >/dev/null || die "Maven finished but $staging has no kafka_2.13 jar"
    pom_checksum >"$staging/.fetched"
    rm -rf "$LIBS"
    mv "$staging" "$LIBS"
    say "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS" | cut -f1))"
}

write_properties() {
    cat >"$PROPERTIES" <<EOF
# Written by scripts/kafka.sh on every start; edits here are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$DATA
num.partitions=$PARTITIONS
auto.create.topics.enable=true
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
}

kafka_java() {
    # shellcheck disable=SC2086  # JVM_OPTS is a list of options
    java $JVM_OPTS "${JAVA_LOGGING[@]}" -cp "$LIBS/*" "$@"
}

format_once() {
    if [[ -f "$DATA/meta.properties" ]]; then
        return
    fi
    local output cluster_id
    if ! output="$(kafka_java kafka.tools.StorageTool random-uuid 2>&1)"; then
        echo "$output" >&2
        die "kafka.tools.StorageTool random-uuid failed (its output is above)"
    fi
    # The tool logs a line before the id; the id is the last line.
    cluster_id="$(tail -n 1 <<<"$output")"
    [[ "$cluster_id" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "StorageTool random-uuid returned '$cluster_id'"
    say "formatting $DATA (cluster id $cluster_id)"
    mkdir -p "$DATA"
    kafka_java kafka.tools.StorageTool format -t "$cluster_id" -c "$PROPERTIES" >>"$LOG" 2>&1 \
        || { tail -n 20 "$LOG" >&2; die "formatting $DATA failed"; }
}

start() {
    check_number ANOMALY_KAFKA_PORT "$PORT"
    check_number ANOMALY_KAFKA_CONTROLLER_PORT "$CONTROLLER_PORT"
    check_number ANOMALY_KAFKA_PARTITIONS "$PARTITIONS"
    check_number ANOMALY_KAFKA_START_TIMEOUT "$START_TIMEOUT"
    require java "install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)"
    lock_home
    local pid
    pid="$(broker_pid)"
    if [[ -n "$pid" ]]; then
        wait_for_port "$pid"
        say "already running (pid $pid) on 127.0.0.1:$PORT"
        return
    fi
    local port
    for port in "$PORT" "$CONTROLLER_PORT"; do
        port_open "$port" && die "127.0.0.1:$port is in use by another process;" \
            "stop it or choose other ports with ANOMALY_KAFKA_PORT / ANOMALY_KAFKA_CONTROLLER_PORT"
    done
    fetch
    mkdir -p "$(dirname "$LOG")"
    if [[ -f "$LOG" ]]; then
        mv "$LOG" "$LOG.1"
    fi
    write_properties
    format_once
    say "starting broker on 127.0.0.1:$PORT (log: $LOG)"
    # setsid: the broker gets its own session, so a Ctrl-C aimed at the caller does not reach it.
    # 9>&-: it must not inherit (and hold forever) the lock taken by lock_home.
    # shellcheck disable=SC2086
    setsid java $JVM_OPTS "${JAVA_LOGGING[@]}" -cp "$LIBS/*" kafka.Kafka "$PROPERTIES" \
        </dev/null >>"$LOG" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$PID_FILE"
    wait_for_port "$pid"
    say "running (pid $pid) on 127.0.0.1:$PORT"
}

# Wait until the PLAINTEXT port accepts connections; on timeout or death show the log and fail.
wait_for_port() {
    local pid="$1" deadline=$((SECONDS + START_TIMEOUT))
    until port_open "$PORT"; do
        if ! alive "$pid"; then
            rm -f "$PID_FILE"
            echo "--- last lines of $LOG ---" >&2
            tail -n 40 "$LOG" >&2
            die "the broker exited during start-up"
        fi
        if ((SECONDS >= deadline)); then
            echo "--- last lines of $LOG ---" >&2
            tail -n 40 "$LOG" >&2
            kill -KILL "$pid" 2>/dev/null || true
            rm -f "$PID_FILE"
            die "the broker did not listen on 127.0.0.1:$PORT within ${START_TIMEOUT}s; killed it"
        fi
        sleep 0.2
    done
}

stop() {
    check_number ANOMALY_KAFKA_STOP_TIMEOUT "$STOP_TIMEOUT"
    lock_home
    local pid
    pid="$(broker_pid)"
    if [[ -z "$pid" ]]; then
        rm -f "$PID_FILE"
        say "not running"
        return
    fi
    say "stopping broker (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while alive "$pid" && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if alive "$pid"; then
        say "still running after ${STOP_TIMEOUT}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while alive "$pid"; do
            sleep 0.1
        done
    fi
    rm -f "$PID_FILE"
    # The main thread turns zombie before the other threads have closed the sockets: wait for the
    # ports too, so that a start right after this one does not find them taken.
    local port
    deadline=$((SECONDS + 10))
    for port in "$PORT" "$CONTROLLER_PORT"; do
        while port_open "$port" && ((SECONDS < deadline)); do
            sleep 0.1
        done
    done
    say "stopped"
}

status() {
    local pid
    pid="$(broker_pid)"
    if [[ -z "$pid" ]]; then
        say "not running"
        return 1
    fi
    if port_open "$PORT"; then
        say "running (pid $pid) on 127.0.0.1:$PORT"
    else
        say "running (pid $pid), not yet listening on 127.0.0.1:$PORT"
    fi
}

case "${1:-}" in
    fetch)
        lock_home
        fetch
        ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    bootstrap) echo "127.0.0.1:$PORT" ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        exit 2
        ;;
esac
