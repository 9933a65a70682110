#!/usr/bin/env bash
# A single-node Apache Kafka broker (KRaft, broker + controller in one JVM) on loopback, for
# development, tests and CI.
#
#   scripts/kafka.sh fetch       download the broker jars with Maven (once; skipped when complete)
#   scripts/kafka.sh start       fetch if needed, format the log directory once, start, wait for the port
#   scripts/kafka.sh start secure  the same with the SASL_PLAINTEXT and SSL listeners below (default
#                                ports 19094 and 19095)
#   scripts/kafka.sh stop        SIGTERM, wait, then SIGKILL
#   scripts/kafka.sh status      exit 0 when the broker is running, 1 when not
#   scripts/kafka.sh bootstrap [plaintext|sasl|ssl]
#                                print a listener's bootstrap address, 127.0.0.1:PORT (default plaintext;
#                                sasl and ssl: the running broker's)
#
# Secure listeners, beside the PLAINTEXT one (which the broker itself and the tests' admin clients use):
#   SASL_PLAINTEXT with SCRAM-SHA-512 (and -256) with `secure` or ANOMALY_KAFKA_SASL_PORT. Its user is
#     created when the home is first formatted, with a random password written to
#     $ANOMALY_KAFKA_HOME/secrets/sasl.password; a home formatted without it must be removed first.
#   SSL with `secure` or ANOMALY_KAFKA_SSL_PORT, with a test CA made by openssl on first use, in
#     $ANOMALY_KAFKA_HOME/secrets: ca.pem (what clients trust), client.pem and client.key (a client
#     certificate, which the broker requires) and client.password (the client key's password). The
#     broker's certificate is for 127.0.0.1 and localhost.
#
# Environment:
#   ANOMALY_KAFKA_HOME             jars, data, logs, pid file   (default $HOME/.cache/anomaly/kafka)
#   ANOMALY_KAFKA_PORT             PLAINTEXT listener port      (default 19092)
#   ANOMALY_KAFKA_CONTROLLER_PORT  KRaft controller port        (default 19093)
#   ANOMALY_KAFKA_SASL_PORT        SASL_PLAINTEXT (SCRAM) listener port (default: none; 19094 with secure)
#   ANOMALY_KAFKA_SASL_USER        the SCRAM user created at format time (default anomaly)
#   ANOMALY_KAFKA_SSL_PORT         SSL listener port            (default: none; 19095 with secure)
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
# Below Linux's ephemeral range (32768-60999), so no client connection's local port can hold them.
PORT="${ANOMALY_KAFKA_PORT:-19092}"
CONTROLLER_PORT="${ANOMALY_KAFKA_CONTROLLER_PORT:-19093}"
SASL_PORT="${ANOMALY_KAFKA_SASL_PORT:-}"
SASL_USER="${ANOMALY_KAFKA_SASL_USER:-anomaly}"
SSL_PORT="${ANOMALY_KAFKA_SSL_PORT:-}"
PARTITIONS="${ANOMALY_KAFKA_PARTITIONS:-3}"
JVM_OPTS="${ANOMALY_KAFKA_JVM_OPTS:--Xmx512m -Xms256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC}"
START_TIMEOUT="${ANOMALY_KAFKA_START_TIMEOUT:-60}"
STOP_TIMEOUT="${ANOMALY_KAFKA_STOP_TIMEOUT:-30}"

LIBS="$KAFKA_HOME/libs"
DATA="$KAFKA_HOME/data"
LOG="$KAFKA_HOME/logs/server.log"
PROPERTIES="$KAFKA_HOME/server.properties"
PID_FILE="$KAFKA_HOME/kafka.pid"
SECRETS="$KAFKA_HOME/secrets"
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

# The listeners this start opens, as NAME://127.0.0.1:PORT, comma-separated.
client_listeners() {
    local listeners="PLAINTEXT://127.0.0.1:$PORT"
    [[ -z "$SASL_PORT" ]] || listeners+=",SASL_PLAINTEXT://127.0.0.1:$SASL_PORT"
    [[ -z "$SSL_PORT" ]] || listeners+=",SSL://127.0.0.1:$SSL_PORT"
    echo "$listeners"
}

# A test CA, a broker certificate signed by it (for 127.0.0.1 and localhost) in a PKCS12 keystore,
# and a client certificate whose key is encrypted with a random password. Made once per home.
make_certificates() {
    [[ -f "$SECRETS/client.key" ]] && return
    require openssl "install OpenSSL (Debian: apt-get install openssl)"
    say "making a test CA and certificates in $SECRETS"
    local work="$SECRETS.partial"
    rm -rf "$work"
    mkdir -p "$work"
    chmod 700 "$work"
    (
        cd "$work"
        local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1)
        openssl rand -hex 16 >store.password
        openssl rand -hex 16 >client.password
        openssl req -x509 "${ec[@]}" -nodes -keyout ca.key -out ca.pem -days 3650 -subj "/CN=anomaly test CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
        sign() { # NAME EXTENSIONS: NAME.csr becomes NAME.pem, signed by the CA
            openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" -days 3650 \
                -extfile <(printf '%s\n' "$2" "authorityKeyIdentifier=keyid" "subjectKeyIdentifier=hash")
        }
        openssl req "${ec[@]}" -nodes -keyout broker.key -out broker.csr -subj "/CN=localhost"
        sign broker $'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth'
        openssl pkcs12 -export -in broker.pem -inkey broker.key -certfile ca.pem -name broker \
            -out broker.p12 -passout file:store.password
        openssl req "${ec[@]}" -keyout client.key -passout file:client.password -out client.csr -subj "/CN=anomaly"
        sign client "extendedKeyUsage=clientAuth"
        rm -f ./*.csr ca.srl broker.key
    ) >"$work.log" 2>&1 || { cat "$work.log" >&2; die "openssl could not make the test certificates"; }
    rm -f "$work.log"
    mkdir -p "$SECRETS"
    chmod 700 "$SECRETS"
    mv "$work"/* "$SECRETS"/
    rmdir "$work"
}

write_properties() {
    local store_password=""
    [[ -z "$SSL_PORT" ]] || store_password="$(<"$SECRETS/store.password")"
    cat >"$PROPERTIES" <<EOF
# Written by scripts/kafka.sh on every start; edits here are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=$(client_listeners),CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=$(client_listeners)
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL
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
    if [[ -n "$SASL_PORT" ]]; then
        cat >>"$PROPERTIES" <<EOF
listener.name.sasl_plaintext.sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
EOF
    fi
    if [[ -n "$SSL_PORT" ]]; then
        cat >>"$PROPERTIES" <<EOF
listener.name.ssl.ssl.keystore.type=PKCS12
listener.name.ssl.ssl.keystore.location=$SECRETS/broker.p12
listener.name.ssl.ssl.keystore.password=$store_password
listener.name.ssl.ssl.truststore.type=PEM
listener.name.ssl.ssl.truststore.location=$SECRETS/ca.pem
listener.name.ssl.ssl.client.auth=required
EOF
    fi
}

kafka_java() {
    # shellcheck disable=SC2086  # JVM_OPTS is a list of options
    java $JVM_OPTS "${JAVA_LOGGING[@]}" -cp "$LIBS/*" "$@"
}

format_once() {
    if [[ -f "$DATA/meta.properties" ]]; then
        [[ -z "$SASL_PORT" || -f "$SECRETS/sasl.password" ]] \
            || die "$DATA was formatted without a SCRAM user; remove $KAFKA_HOME (or choose another" \
                "ANOMALY_KAFKA_HOME) to format it with one"
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
    local scram=()
    if [[ -n "$SASL_PORT" ]]; then
        mkdir -p "$SECRETS"
        chmod 700 "$SECRETS"
        [[ -f "$SECRETS/sasl.password" ]] || openssl rand -hex 16 >"$SECRETS/sasl.password"
        local mechanism credential="name=$SASL_USER,password=$(<"$SECRETS/sasl.password")"
        for mechanism in SCRAM-SHA-512 SCRAM-SHA-256; do
            scram+=(--add-scram "$mechanism=[$credential]")
        done
        say "creating SCRAM user $SASL_USER (password in $SECRETS/sasl.password)"
    fi
    kafka_java kafka.tools.StorageTool format -t "$cluster_id" -c "$PROPERTIES" "${scram[@]}" >>"$LOG" 2>&1 \
        || { tail -n 20 "$LOG" >&2; die "formatting $DATA failed"; }
}

start() {
    check_number ANOMALY_KAFKA_PORT "$PORT"
    check_number ANOMALY_KAFKA_CONTROLLER_PORT "$CONTROLLER_PORT"
    check_number ANOMALY_KAFKA_PARTITIONS "$PARTITIONS"
    [[ -z "$SASL_PORT" ]] || check_number ANOMALY_KAFKA_SASL_PORT "$SASL_PORT"
    [[ -z "$SSL_PORT" ]] || check_number ANOMALY_KAFKA_SSL_PORT "$SSL_PORT"
    [[ "$SASL_USER" =~ ^[A-Za-z0-9_.-]+$ ]] || die "ANOMALY_KAFKA_SASL_USER must be letters, digits, '.', '_' or '-'"
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
    for port in "$PORT" "$CONTROLLER_PORT" $SASL_PORT $SSL_PORT; do
        port_open "$port" && die "127.0.0.1:$port is in use by another process;" \
            "stop it or choose other ports with the ANOMALY_KAFKA_..._PORT variables"
    done
    fetch
    [[ -z "$SSL_PORT" ]] || make_certificates
    mkdir -p "$(dirname "$LOG")"
    if [[ -f "$LOG" ]]; then
        mv "$LOG" "$LOG.1"
    fi
    write_properties
    format_once
    say "starting broker on $(client_listeners) (log: $LOG)"
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
    for port in "$PORT" "$CONTROLLER_PORT" $(listener_port SASL_PLAINTEXT) $(listener_port SSL); do
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

# The port of listener NAME (SASL_PLAINTEXT, SSL) in the last start's properties; nothing if none.
listener_port() {
    [[ -f "$PROPERTIES" ]] || return 0
    sed -n "s|^advertised.listeners=.*$1://127.0.0.1:\([0-9]*\).*|\1|p" "$PROPERTIES"
}

bootstrap() {
    local port
    case "$1" in
        plaintext) port="$PORT" ;;
        sasl) port="$(listener_port SASL_PLAINTEXT)" ;;
        ssl) port="$(listener_port SSL)" ;;
        *) die "bootstrap takes plaintext, sasl or ssl, not '$1'" ;;
    esac
    [[ -n "$port" ]] || die "the broker was not started with a $1 listener (scripts/kafka.sh start secure)"
    echo "127.0.0.1:$port"
}

case "${1:-}" in
    fetch)
        lock_home
        fetch
        ;;
    start)
        case "${2:-}" in
            "") ;;
            secure)
                SASL_PORT="${SASL_PORT:-19094}"
                SSL_PORT="${SSL_PORT:-19095}"
                ;;
            *) die "start takes nothing or 'secure', not '$2'" ;;
        esac
        start
        ;;
    stop) stop ;;
    status) status ;;
    bootstrap) bootstrap "${2:-plaintext}" ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        exit 2
        ;;
esac
