#!/usr/bin/env bash
# start.sh — start a private single-node Apache Kafka (KRaft, broker+controller) on 127.0.0.1.
#
#   scripts/kafka/start.sh WORKDIR          (or FOLLOWPUB_KAFKA_WORKDIR=WORKDIR)
#
# Everything lives in WORKDIR, so runs with different work dirs never collide:
#   server.properties, data/   the broker's configuration and storage
#   server.p12, ca.pem         a self-signed TLS certificate (SAN IP:127.0.0.1, DNS:localhost)
#   kafka.log                  the broker's output;   kafka.pid   its process id
#   env                        `export` lines for tests (source it):
#       FOLLOWPUB_TEST_KAFKA_BROKERS        PLAINTEXT listener, 127.0.0.1:PORT
#       FOLLOWPUB_TEST_KAFKA_SASL_BROKERS   SASL_SSL listener: SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN
#       FOLLOWPUB_TEST_KAFKA_SASL_MECHANISMS the mechanisms it enables, comma-separated
#       FOLLOWPUB_TEST_KAFKA_SASL_USER, FOLLOWPUB_TEST_KAFKA_SASL_PASSWORD
#       FOLLOWPUB_TEST_KAFKA_CA_FILE        PEM certificate to trust for the SASL_SSL listener
#       FOLLOWPUB_TEST_KAFKA_VERSION        the broker's version
#       FOLLOWPUB_TEST_KAFKA_PID            the broker's process id
#
# A WORKDIR that already holds a formatted broker is restarted on the same ports and data (this is
# how tests take a broker down and bring it back). A broker already running there is left alone.
#
# Environment:
#   KAFKA_VERSION              broker version (default 4.4.0; 3.9.x selects the 3.9 line)
#   KAFKA_START_TIMEOUT        seconds to wait for "Kafka Server started" (default 90)
#   KAFKA_HEAP_OPTS            JVM heap flags (default -Xmx512m -Xms512m)
#   FOLLOWPUB_KAFKA_PARENT_PID when set, the broker is killed once that process is gone (so a
#                              killed test run leaves no broker behind)
#
# Ports are picked free at first start (none fixed), below the kernel's ephemeral range; every
# listener binds 127.0.0.1 only. Exit status: 0 ready, 3 Java or the jars are unavailable, 1 other.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
workdir=${1:-${FOLLOWPUB_KAFKA_WORKDIR:-}}
if [[ -z $workdir ]]; then
	echo "usage: $0 WORKDIR   (or set FOLLOWPUB_KAFKA_WORKDIR)" >&2
	exit 1
fi
mkdir -p "$workdir"
workdir=$(cd "$workdir" && pwd)
case $workdir in
*[\'\"\ \\]*)
	echo "start.sh: work dir must not contain quotes, spaces or backslashes: $workdir" >&2
	exit 1
	;;
esac

timeout_s=${KAFKA_START_TIMEOUT:-90}
sasl_user=followpub
log=$workdir/kafka.log
pidfile=$workdir/kafka.pid

if ! command -v java >/dev/null 2>&1; then
	echo "start.sh: java is not installed (Kafka needs Java 17+)" >&2
	exit 3
fi

# alive PID: true when PID runs and is not a zombie.
alive() {
	local state
	kill -0 "$1" 2>/dev/null || return 1
	state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || echo '?')
	[[ $state != Z ]]
}

if [[ -f $pidfile ]] && alive "$(cat "$pidfile")"; then
	echo "start.sh: a broker is already running in $workdir (pid $(cat "$pidfile"))" >&2
	cat "$workdir/env"
	exit 0
fi

fresh=
if [[ -f $workdir/settings ]]; then
	# Restart: same version, ports, password and data as the first start.
	# shellcheck source=/dev/null
	. "$workdir/settings"
else
	fresh=1
	version=${KAFKA_VERSION:-4.4.0}
	# port_in_use PORT: true when any TCP socket (v4 or v6) has PORT as its local port.
	port_in_use() {
		local hex
		hex=$(printf ':%04X ' "$1")
		grep -q -- "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null
	}
	# free_port: a random port in [20000, 32000) that no socket uses and not in $taken.
	taken=" "
	free_port() {
		local p
		for _ in $(seq 1 200); do
			p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
			if [[ $taken != *" $p "* ]] && ! port_in_use "$p"; then
				echo "$p"
				return 0
			fi
		done
		echo "start.sh: no free port found" >&2
		return 1
	}
	plain_port=$(free_port)
	taken="$taken$plain_port "
	sasl_port=$(free_port)
	taken="$taken$sasl_port "
	ctrl_port=$(free_port)
	rand_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
	sasl_password=test-$(rand_hex 12)
	store_password=$(rand_hex 12)
	# A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, not starting with '-'
	# (what `kafka-storage.sh random-uuid` prints, without paying for a JVM start).
	while :; do
		cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
		[[ $cluster_id != -* ]] && break
	done
	cat >"$workdir/settings" <<EOF
version=$version
plain_port=$plain_port
sasl_port=$sasl_port
ctrl_port=$ctrl_port
sasl_password=$sasl_password
store_password=$store_password
cluster_id=$cluster_id
EOF
fi

if ! libs=$(KAFKA_VERSION=$version "$here/jars.sh"); then
	exit 3
fi
classpath="$libs/*"

# Logging: console only (into kafka.log); log4j 2 for 4.x, log4j 1 (reload4j) for 3.x.
case $version in
3.*)
	logconf=$workdir/log4j.properties
	logflag=-Dlog4j.configuration=file:$logconf
	cat >"$logconf" <<'EOF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.log=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.storage=WARN
log4j.logger.org.apache.kafka.common.config.AbstractConfig=WARN
log4j.logger.kafka.server.KafkaConfig=WARN
EOF
	;;
*)
	logconf=$workdir/log4j2.properties
	logflag=-Dlog4j2.configurationFile=$logconf
	cat >"$logconf" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.log.name = kafka.log
logger.log.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
logger.storage.name = org.apache.kafka.storage
logger.storage.level = WARN
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
EOF
	;;
esac

if [[ ! -f $workdir/data/meta.properties ]]; then
	# TLS: one self-signed certificate, trusted by clients as their CA.
	rm -f "$workdir/server.p12" "$workdir/ca.pem"
	keytool -genkeypair -alias broker -keyalg EC -groupname secp256r1 -validity 3650 \
		-dname "CN=localhost, OU=followpub tests" -ext "SAN=IP:127.0.0.1,DNS:localhost" \
		-keystore "$workdir/server.p12" -storetype PKCS12 \
		-storepass "$store_password" -keypass "$store_password" >/dev/null 2>&1
	keytool -exportcert -rfc -alias broker -keystore "$workdir/server.p12" -storetype PKCS12 \
		-storepass "$store_password" -file "$workdir/ca.pem" >/dev/null 2>&1

	share_props=
	case $version in
	3.*) ;;
	*) share_props="share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1" ;;
	esac
	cat >"$workdir/server.properties" <<EOF
# Written by scripts/kafka/start.sh: a single-node KRaft test broker on 127.0.0.1.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$ctrl_port
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$plain_port,SASL_SSL://127.0.0.1:$sasl_port,CONTROLLER://127.0.0.1:$ctrl_port
advertised.listeners=PLAINTEXT://127.0.0.1:$plain_port,SASL_SSL://127.0.0.1:$sasl_port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$workdir/data

# SASL_SSL: one user for every mechanism followpub supports. The SCRAM credentials are added at
# format time; PLAIN's are here. No authorizer, so any user may do anything.
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$sasl_user="$sasl_password";
ssl.keystore.type=PKCS12
ssl.keystore.location=$workdir/server.p12
ssl.keystore.password=$store_password
ssl.key.password=$store_password

# One node: every internal topic has one replica; small and quick.
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
$share_props
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
EOF

	rm -rf "$workdir/data"
	# shellcheck disable=SC2086 # logflag is one word
	if ! java -Xmx256m $logflag -cp "$classpath" kafka.tools.StorageTool format \
		-t "$cluster_id" -c "$workdir/server.properties" \
		--add-scram "SCRAM-SHA-512=[name=$sasl_user,password=$sasl_password]" \
		--add-scram "SCRAM-SHA-256=[name=$sasl_user,password=$sasl_password]" \
		>"$workdir/format.log" 2>&1; then
		echo "start.sh: formatting the storage failed:" >&2
		tail -n 40 "$workdir/format.log" >&2
		exit 1
	fi
fi

cat >"$workdir/env" <<EOF
export FOLLOWPUB_TEST_KAFKA_BROKERS='127.0.0.1:$plain_port'
export FOLLOWPUB_TEST_KAFKA_SASL_BROKERS='127.0.0.1:$sasl_port'
export FOLLOWPUB_TEST_KAFKA_SASL_USER='$sasl_user'
export FOLLOWPUB_TEST_KAFKA_SASL_PASSWORD='$sasl_password'
export FOLLOWPUB_TEST_KAFKA_SASL_MECHANISMS='SCRAM-SHA-512,SCRAM-SHA-256,PLAIN'
export FOLLOWPUB_TEST_KAFKA_CA_FILE='$workdir/ca.pem'
export FOLLOWPUB_TEST_KAFKA_VERSION='$version'
EOF

# Keep the previous run's output when restarting.
if [[ -f $log ]]; then
	mv -f "$log" "$log.prev"
fi

started=$(date +%s)
started_ms=$(($(date +%s%N) / 1000000))
# shellcheck disable=SC2086 # KAFKA_HEAP_OPTS and logflag are word lists on purpose
(
	cd "$workdir"
	exec java ${KAFKA_HEAP_OPTS:--Xmx512m -Xms512m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
		-XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
		$logflag -Dkafka.logs.dir="$workdir/logs" \
		-cp "$classpath" kafka.Kafka "$workdir/server.properties"
) </dev/null >"$log" 2>&1 &
pid=$!
echo "$pid" >"$pidfile"
echo "export FOLLOWPUB_TEST_KAFKA_PID='$pid'" >>"$workdir/env" # the benchmarks read its CPU time

# Optional watchdog: take the broker down with the process that asked for it.
rm -f "$workdir/watchdog.pid"
if [[ -n ${FOLLOWPUB_KAFKA_PARENT_PID:-} ]]; then
	(
		while kill -0 "$FOLLOWPUB_KAFKA_PARENT_PID" 2>/dev/null && kill -0 "$pid" 2>/dev/null; do
			sleep 1
		done
		kill -TERM "$pid" 2>/dev/null || true
	) </dev/null >/dev/null 2>&1 &
	echo "$!" >"$workdir/watchdog.pid"
fi

# Wait, bounded, for the broker to say it is up.
deadline=$((started + timeout_s))
while ! grep -q 'Kafka Server started' "$log" 2>/dev/null; do
	if ! alive "$pid"; then
		# Another process took one of the ports between our check and the broker's bind: on a
		# first start, pick new ports and start over (twice at most).
		retry=${FOLLOWPUB_KAFKA_PORT_RETRY:-0}
		if [[ -n $fresh && $retry -lt 2 ]] && grep -q 'Address already in use' "$log"; then
			echo "start.sh: a port was taken meanwhile; retrying with other ports" >&2
			rm -rf "$workdir/settings" "$workdir/data" "$workdir/server.properties" "$pidfile"
			FOLLOWPUB_KAFKA_PORT_RETRY=$((retry + 1)) exec "$0" "$workdir"
		fi
		echo "start.sh: the broker exited during start-up; last lines of $log:" >&2
		tail -n 60 "$log" >&2
		exit 1
	fi
	if (($(date +%s) >= deadline)); then
		echo "start.sh: the broker was not ready within ${timeout_s}s; last lines of $log:" >&2
		tail -n 60 "$log" >&2
		"$here/stop.sh" "$workdir" >&2 || true
		exit 1
	fi
	sleep 0.2
done
echo "start.sh: Kafka $version ready in $(($(date +%s%N) / 1000000 - started_ms)) ms (pid $pid):" \
	"PLAINTEXT 127.0.0.1:$plain_port, SASL_SSL 127.0.0.1:$sasl_port, dir $workdir" >&2
cat "$workdir/env"
