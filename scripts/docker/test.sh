#!/usr/bin/env bash
# test.sh — `make test-docker`: build the images here and run them, with no image registry and no
# traffic beyond 127.0.0.1.
#
#   1. installs what is missing: docker.io (dockerd, and a docker client whose `build` drives the
#      daemon's BuildKit without buildx) and mmdebstrap from Debian; the compose v2 CLI plugin,
#      built once from the Go module proxy (Debian 12 has only compose v1) into the cache
#   2. starts a private dockerd (dockerd.sh: own socket, data root, no bridge, no iptables)
#   3. makes the base images (base-images.sh) and builds the Dockerfile with them; the build's Go
#      modules come from this machine's module cache, served on 127.0.0.1
#   4. runs the tests that use them: internal/deploytest (TestImage, TestComposeUp: docker compose up
#      with scripts/docker/compose.test.yml) and internal/kafkatest (TestContainerRoundTrip:
#      testcontainers with the local Kafka image)
#   5. checks that the daemon never had a network but host and none, then removes every container,
#      the followpub image, the build cache beyond FOLLOWPUB_DOCKER_KEEP_CACHE (default 2GB), and
#      stops the daemon and the module server by their pids, whatever the outcome
#
# Kept between runs, in FOLLOWPUB_DOCKER_CACHE (default ~/.cache/followpub/docker): the compose
# plugin, the Debian root file system, the daemon's data root (base images, bounded build cache).
# Exit status: 0 when every step and test passed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
cache=${FOLLOWPUB_DOCKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/followpub/docker}
export FOLLOWPUB_DOCKER_CACHE=$cache
compose_version=v5.6.0
keep_cache=${FOLLOWPUB_DOCKER_KEEP_CACHE:-2GB}
GO=${GO:-go}

# One run at a time: two daemons must not share a data root.
mkdir -p "$cache"
exec 9>"$cache/lock"
if ! flock -w 1800 9; then
	echo "test-docker: another run holds $cache/lock" >&2
	exit 1
fi

t0=$(date +%s)
step() { echo "== test-docker: $* ($(($(date +%s) - t0))s)"; }

# 1. What it needs.
need=()
command -v dockerd >/dev/null 2>&1 && [[ -x /usr/bin/docker ]] || need+=(docker.io)
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
if ((${#need[@]})); then
	step "installing ${need[*]} (apt-get)"
	# No service may start on installation: a daemon started that way would have a bridge.
	policy=/usr/sbin/policy-rc.d
	made_policy=
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod +x "$policy"
		made_policy=1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	[[ -z $made_policy ]] || rm -f "$policy"
fi
# docker.io brings a docker client too; another one may come first on PATH (its `build` needs buildx,
# which Debian 12 does not package): builds use docker.io's, everything else whichever is first.
export FOLLOWPUB_DOCKER_BUILD_CLI=/usr/bin/docker
command -v docker >/dev/null 2>&1 || {
	echo "test-docker: no docker client on PATH" >&2
	exit 1
}

export DOCKER_CONFIG=$cache/config
plugin=$DOCKER_CONFIG/cli-plugins/docker-compose
if [[ ! -x $plugin ]] || [[ $("$plugin" version --short 2>/dev/null) != "${compose_version#v}" ]]; then
	step "building the compose plugin $compose_version from the Go module proxy (once)"
	mkdir -p "$(dirname "$plugin")"
	# Its own module cache, so that removing the cache directory removes it too.
	modcache=(env GOMODCACHE="$cache/gomod" GOFLAGS=-modcacherw)
	src=$(cd "$cache" && "${modcache[@]}" "$GO" mod download -json "github.com/docker/compose/v5@$compose_version" |
		sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
	if ! (cd "$src" && "${modcache[@]}" CGO_ENABLED=0 "$GO" build -trimpath \
		-ldflags "-s -w -X github.com/docker/compose/v5/internal.Version=$compose_version" \
		-o "$plugin.tmp" ./cmd) >"$cache/compose-build.log" 2>&1; then
		tail -n 30 "$cache/compose-build.log" >&2
		echo "test-docker: building the compose plugin failed (log above)" >&2
		exit 1
	fi
	mv "$plugin.tmp" "$plugin"
	echo "test-docker: built $plugin ($(grep -c '^go: downloading' "$cache/compose-build.log" || true) modules downloaded)"
fi
echo "test-docker: $(docker compose version)"

# 2. The daemon, and everything that must end with this script.
run=$(mktemp -d /tmp/fpdocker.XXXXXX)
proxy_pid=
status=1
# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
	set +eu
	if [[ -S $run/docker.sock ]]; then
		local left
		left=$(docker ps -aq)
		if [[ -n $left ]]; then
			echo "test-docker: removing containers left behind: $(echo "$left" | wc -l)"
			# shellcheck disable=SC2086 # a list of ids
			docker rm -f -v $left >/dev/null
		fi
		[[ -z ${FOLLOWPUB_TEST_IMAGE:-} ]] || docker image rm -f "$FOLLOWPUB_TEST_IMAGE" >/dev/null 2>&1
		docker image prune -f >/dev/null
		docker volume prune -f >/dev/null
		"$FOLLOWPUB_DOCKER_BUILD_CLI" builder prune -f --keep-storage "$keep_cache" >/dev/null
		echo "test-docker: kept images: $(docker images --format '{{.Repository}}:{{.Tag}}' | sort | tr '\n' ' ')"
		echo "test-docker: disk: $(docker system df --format '{{.Type}} {{.Size}}' | tr '\n' ';')"
	fi
	[[ -z $proxy_pid ]] || kill "$proxy_pid" 2>/dev/null
	"$here/dockerd.sh" stop "$run"
	if ((status != 0)) && [[ -f $run/dockerd.log ]]; then
		echo "test-docker: failed ($status); last lines of the daemon's log:" >&2
		tail -n 15 "$run/dockerd.log" >&2
	fi
	rm -rf "$run"
	echo "test-docker: $( ((status == 0)) && echo ok || echo FAILED) in $(($(date +%s) - t0))s"
}
trap 'status=$?; cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "starting a private dockerd"
daemon_env=$("$here/dockerd.sh" start "$run")
eval "$daemon_env"
export DOCKER_HOST
# A run that was killed may have left containers in the data root; the daemon restarts those with a
# restart policy. None may run beside this run's.
stale=$(docker ps -aq)
if [[ -n $stale ]]; then
	echo "test-docker: removing $(echo "$stale" | wc -l) containers an earlier run left"
	# shellcheck disable=SC2086 # a list of ids
	docker rm -f -v $stale >/dev/null
fi

# 3. The images.
step "base images"
"$here/base-images.sh"
kafka_image=followpub-local/kafka:${KAFKA_VERSION:-4.4.0}
golang_image=followpub-local/golang:$("$GO" env GOVERSION | sed 's/^go//')
static_image=followpub-local/static:bookworm

# The Dockerfile's `go mod download` gets this machine's module cache, served on 127.0.0.1 (the
# download directory is laid out as the module proxy protocol wants).
"$GO" mod download
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$("$GO" env GOMODCACHE)/cache/download" "$port" \
	>"$run/goproxy.log" 2>&1 &
proxy_pid=$!

version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
export FOLLOWPUB_TEST_IMAGE=followpub:test-docker FOLLOWPUB_TEST_KAFKA_IMAGE=$kafka_image
export FOLLOWPUB_TEST_IMAGE_VERSION=$version FOLLOWPUB_TEST_IMAGE_COMMIT=$commit
step "building the Dockerfile: $FOLLOWPUB_TEST_IMAGE ($version, commit $commit) on $golang_image and $static_image"
DOCKER_BUILDKIT=1 "$FOLLOWPUB_DOCKER_BUILD_CLI" build --progress plain --network host \
	--build-arg GO_IMAGE="$golang_image" --build-arg RUNTIME_IMAGE="$static_image" \
	--build-arg GOPROXY="http://127.0.0.1:$port" --build-arg GOSUMDB=off \
	--build-arg VERSION="$version" --build-arg COMMIT="$commit" \
	-t "$FOLLOWPUB_TEST_IMAGE" . >"$run/build.log" 2>&1 || {
	tail -n 40 "$run/build.log" >&2
	echo "test-docker: docker build failed (log above)" >&2
	exit 1
}
# One line per build step: what it ran, and its time or "cached".
awk '/^#[0-9]+ \[/ && !/\[internal\]/ { n = $1; if (!(n in name)) order[++k] = n; sub(/^#[0-9]+ /, ""); name[n] = substr($0, 1, 88) }
	/^#[0-9]+ CACHED/ { st[$1] = "cached" }
	/^#[0-9]+ DONE/ { st[$1] = $3 }
	END { for (i = 1; i <= k; i++) printf "  %-88s %s\n", name[order[i]], st[order[i]] }' "$run/build.log"
echo "test-docker: built $FOLLOWPUB_TEST_IMAGE: $(docker image inspect -f '{{.Size}}' "$FOLLOWPUB_TEST_IMAGE" | awk '{printf "%.1f MB", $1/1e6}');" \
	"modules served locally: $(grep -c '"GET ' "$run/goproxy.log" || true) requests"
kill "$proxy_pid" 2>/dev/null || true
proxy_pid=

# 4. The tests. CI set or not, a missing daemon or image now fails them (FOLLOWPUB_TEST_DOCKER).
export FOLLOWPUB_TEST_DOCKER=1 TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_HOST_OVERRIDE=localhost
unset FOLLOWPUB_TEST_KAFKA_BROKERS
step "go test: the image, docker compose up/down, testcontainers"
"$GO" test -race -count=1 -v -run '^(TestImage|TestComposeUp|TestComposeOverride)$' ./internal/deploytest/ \
	2>&1 | grep -vE '^(=== RUN|=== PAUSE|=== CONT)'
# testcontainers' own chatter (its banner, timestamped progress lines) left out.
"$GO" test -race -count=1 -v -run '^TestContainerRoundTrip$' ./internal/kafkatest/ 2>&1 |
	grep -vE '^(=== RUN|=== PAUSE|=== CONT|[0-9]{4}/[0-9]{2}/[0-9]{2} )' | grep -vE '^  [A-Z][a-zA-Z ]+:'

# 5. Nothing but host and none, ever: a bridge network would mean traffic off the loopback.
networks=$(docker network ls --format '{{.Name}}' | sort | tr '\n' ' ')
if [[ $networks != "host none " ]]; then
	echo "test-docker: the daemon has networks other than host and none: $networks" >&2
	exit 1
fi
step "networks: $networks(no bridge; every container ran with host networking or none)"
