#!/usr/bin/env bash
# dockerd.sh — a private Docker daemon that cannot put traffic anywhere but 127.0.0.1.
#
#   scripts/docker/dockerd.sh start RUNDIR    start one; prints `export DOCKER_HOST=unix://RUNDIR/docker.sock`
#   scripts/docker/dockerd.sh stop RUNDIR     stop the one started there (by its pid), wait for it
#
# Its own socket, exec root and pid file live in RUNDIR (keep it short: a socket path has a length
# limit); its images and build cache in FOLLOWPUB_DOCKER_CACHE/data-root (default
# ~/.cache/followpub/docker), so a second run finds the base images already made. No bridge, no
# iptables rules, no forwarding or masquerading: the only networks are `host` and `none`, so every
# container either shares the host's loopback or has no network at all. The daemon's log is
# RUNDIR/dockerd.log. Exit status: 0, or 1 with the reason (and the log's tail) on stderr.
set -euo pipefail

cmd=${1:-}
rundir=${2:-}
if [[ -z $cmd || -z $rundir ]]; then
	echo "usage: $0 start|stop RUNDIR" >&2
	exit 1
fi
cache=${FOLLOWPUB_DOCKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/followpub/docker}
pidfile=$rundir/dockerd.pid
sock=$rundir/docker.sock

case $cmd in
start)
	if ! command -v dockerd >/dev/null 2>&1; then
		echo "dockerd.sh: dockerd is not installed (apt-get install docker.io)" >&2
		exit 1
	fi
	mkdir -p "$rundir" "$cache/data-root"
	# An empty configuration file: nothing from /etc/docker/daemon.json applies.
	echo '{}' >"$rundir/daemon.json"
	dockerd --config-file "$rundir/daemon.json" \
		--data-root "$cache/data-root" --exec-root "$rundir/exec" --pidfile "$pidfile" \
		-H "unix://$sock" \
		--bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
		--userland-proxy=false \
		</dev/null >"$rundir/dockerd.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 120); do
		if DOCKER_HOST=unix://$sock docker version >/dev/null 2>&1; then
			echo "dockerd.sh: dockerd ready (pid $pid, socket $sock, data root $cache/data-root)" >&2
			echo "export DOCKER_HOST=unix://$sock"
			exit 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		sleep 0.5
	done
	echo "dockerd.sh: dockerd did not answer on $sock; last lines of its log:" >&2
	tail -n 30 "$rundir/dockerd.log" >&2
	kill "$pid" 2>/dev/null || true
	exit 1
	;;
stop)
	[[ -f $pidfile ]] || exit 0
	pid=$(cat "$pidfile")
	if kill "$pid" 2>/dev/null; then
		# dockerd stops its containers and its containerd first; give it the time that takes.
		for _ in $(seq 1 60); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.5
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "dockerd.sh: dockerd (pid $pid) still runs after 30s; killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$pidfile"
	# Mounts the daemon may leave behind: its network namespace file, a bind mount of its data root.
	awk -v run="$rundir/" -v data="$cache/data-root" \
		'index($5, run) == 1 || $5 == data || index($5, data "/") == 1 { print $5 }' /proc/self/mountinfo |
		sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
	echo "dockerd.sh: dockerd (pid $pid) stopped" >&2
	;;
*)
	echo "usage: $0 start|stop RUNDIR" >&2
	exit 1
	;;
esac
