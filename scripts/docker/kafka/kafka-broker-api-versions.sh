#!/bin/bash
# kafka-broker-api-versions.sh — Kafka's own tool (org.apache.kafka.tools, from the kafka-tools jar),
# under the name and path the public apache/kafka image gives it, for docker-compose.yml's health
# check: it exits 0 once the broker answers an ApiVersions request.
exec java -Xmx128m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties \
	-cp "/opt/kafka/libs/*:/opt/kafka/tools-libs/*" org.apache.kafka.tools.BrokerApiVersionsCommand "$@"
