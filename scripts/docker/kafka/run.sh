#!/bin/bash
# run.sh — the entry point of the local Kafka image (scripts/docker/base-images.sh): a single
# KRaft broker configured the way the public apache/kafka image is, so that docker-compose.yml and
# internal/kafkatest run unchanged against either image.
#
#   KAFKA_<NAME>=value  becomes the server property <name>: '_' → '.', '__' → '_', '___' → '-',
#                       lower case (KAFKA_NODE_ID → node.id, KAFKA_LOG_DIRS → log.dirs)
#   CLUSTER_ID          the cluster id the storage is formatted with (required on a fresh volume)
#   KAFKA_HEAP_OPTS     JVM heap flags (default -Xmx512m -Xms512m); KAFKA_OPTS: more JVM flags
#
# The storage is formatted once (kept when log.dirs is already formatted), then the broker runs in
# the foreground and logs to the console.
set -euo pipefail

conf=/opt/kafka/config/server.properties
mkdir -p "$(dirname "$conf")"
: >"$conf"
# Variables that configure the JVM or this script, not the broker.
skip=" KAFKA_HEAP_OPTS KAFKA_OPTS KAFKA_JVM_PERFORMANCE_OPTS KAFKA_LOG4J_OPTS KAFKA_JMX_OPTS KAFKA_VERSION KAFKA_HOME "
while IFS='=' read -r -d '' name value; do
	[[ $name == KAFKA_* && $skip != *" $name "* ]] || continue
	key=${name#KAFKA_}
	key=${key//___/-}
	key=${key//__/@}
	key=${key//_/.}
	key=${key//@/_}
	printf '%s=%s\n' "${key,,}" "$value" >>"$conf"
done < <(env -0)

if ! grep -q '^process.roles=' "$conf"; then
	echo "run.sh: no KAFKA_PROCESS_ROLES: set the broker's configuration through KAFKA_* variables" >&2
	exit 1
fi

classpath="/opt/kafka/libs/*"
log4j=-Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties
logdir=$(sed -n 's/^log.dirs=//p' "$conf" | cut -d, -f1)
logdir=${logdir:-/tmp/kraft-combined-logs}
if [[ ! -f $logdir/meta.properties ]]; then
	if [[ -z ${CLUSTER_ID:-} ]]; then
		echo "run.sh: $logdir is not formatted and CLUSTER_ID is unset: set CLUSTER_ID (kafka-storage.sh random-uuid)" >&2
		exit 1
	fi
	java -Xmx256m "$log4j" -cp "$classpath" kafka.tools.StorageTool format \
		-t "$CLUSTER_ID" -c "$conf" --ignore-formatted
fi

# shellcheck disable=SC2086 # word lists on purpose
exec java ${KAFKA_HEAP_OPTS:--Xmx512m -Xms512m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
	-XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true ${KAFKA_OPTS:-} \
	"$log4j" -Dkafka.logs.dir=/tmp/kafka-logs -cp "$classpath" kafka.Kafka "$conf"
