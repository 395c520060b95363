#!/usr/bin/env bash
# stop.sh — stop the broker that start.sh started in WORKDIR.
#
#   scripts/kafka/stop.sh WORKDIR          (or FOLLOWPUB_KAFKA_WORKDIR=WORKDIR)
#
# Sends SIGTERM to the pid in WORKDIR/kafka.pid (a clean shutdown), waits up to
# KAFKA_STOP_TIMEOUT seconds (default 30), then SIGKILL. Keeps the data, ports and settings, so
# start.sh WORKDIR brings the same broker back. Idempotent: stopping a stopped broker succeeds.
set -euo pipefail

workdir=${1:-${FOLLOWPUB_KAFKA_WORKDIR:-}}
if [[ -z $workdir ]]; then
	echo "usage: $0 WORKDIR   (or set FOLLOWPUB_KAFKA_WORKDIR)" >&2
	exit 1
fi
timeout_s=${KAFKA_STOP_TIMEOUT:-30}

# alive PID: true when PID runs and is not a zombie.
alive() {
	local state
	kill -0 "$1" 2>/dev/null || return 1
	state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || echo '?')
	[[ $state != Z ]]
}

# The watchdog (if any) goes first so it does not outlive the broker.
if [[ -f $workdir/watchdog.pid ]]; then
	kill -TERM "$(cat "$workdir/watchdog.pid")" 2>/dev/null || true
	rm -f "$workdir/watchdog.pid"
fi

pidfile=$workdir/kafka.pid
[[ -f $pidfile ]] || exit 0
pid=$(cat "$pidfile")
if [[ ! $pid =~ ^[0-9]+$ ]]; then
	echo "stop.sh: $pidfile does not hold a pid" >&2
	exit 1
fi
# Only signal the process if it still is our java (the pid may have been reused).
if alive "$pid" && grep -q "kafka.Kafka" "/proc/$pid/cmdline" 2>/dev/null; then
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 $((timeout_s * 5))); do
		alive "$pid" || break
		sleep 0.2
	done
	if alive "$pid"; then
		echo "stop.sh: broker pid $pid did not stop within ${timeout_s}s; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
		for _ in $(seq 1 50); do
			alive "$pid" || break
			sleep 0.2
		done
	fi
fi
rm -f "$pidfile"
