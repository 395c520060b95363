#!/usr/bin/env bash
# base-images.sh — make the base images `make test-docker` needs, on this machine, from Debian's
# packages, this machine's Go and Kafka's jars from Maven Central. Nothing is pulled from an image
# registry. Needs a running daemon (DOCKER_HOST, see dockerd.sh) and mmdebstrap.
#
#   followpub-local/debian:bookworm    mmdebstrap --variant=minbase + ca-certificates, tzdata and
#                                      openjdk-17-jre-headless, imported as an image
#   followpub-local/golang:GOVERSION   that + this machine's GOROOT: the Dockerfile's GO_IMAGE
#   followpub-local/static:bookworm    what distroless/static holds (CA certificates, time zone
#                                      data, passwd with nonroot 65532, /tmp): its RUNTIME_IMAGE
#   followpub-local/kafka:KAFKA_VERSION the broker, configured like apache/kafka (kafka/run.sh)
#
# Each image carries a label with a hash of its recipe; an image whose label matches is kept, so a
# second run builds nothing. The root file system tarball is kept in the cache directory
# (FOLLOWPUB_DOCKER_CACHE, default ~/.cache/followpub/docker) for the same reason.
# Prints one line per image: built or kept. Exit status 0, or 1 with the reason on stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${FOLLOWPUB_DOCKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/followpub/docker}
kafka_version=${KAFKA_VERSION:-4.4.0}
suite=bookworm
packages=ca-certificates,tzdata,openjdk-17-jre-headless
mirrors=(
	"deb http://deb.debian.org/debian $suite main"
	"deb http://deb.debian.org/debian $suite-updates main"
	"deb http://deb.debian.org/debian-security $suite-security main"
)
label=org.followpub.recipe

: "${DOCKER_HOST:?base-images.sh: DOCKER_HOST is unset: start a daemon with scripts/docker/dockerd.sh}"
# docker.io's client: its `docker build` drives the daemon's BuildKit without the buildx plugin.
build_cli=${FOLLOWPUB_DOCKER_BUILD_CLI:-/usr/bin/docker}

hash() { sha256sum | cut -c1-16; }

# kept IMAGE KEY: true when IMAGE exists with recipe label KEY.
kept() {
	local got
	got=$(docker image inspect -f "{{index .Config.Labels \"$label\"}}" "$1" 2>/dev/null) || return 1
	[[ $got == "$2" ]]
}

# build IMAGE KEY NETWORK CONTEXT [ARGS...]: BuildKit build of CONTEXT/Dockerfile.
build() {
	local image=$1 key=$2 network=$3 context=$4
	shift 4
	DOCKER_BUILDKIT=1 "$build_cli" build --quiet --network "$network" --label "$label=$key" \
		-t "$image" "$@" "$context" >/dev/null
}

mkdir -p "$cache/rootfs"

# The Debian root file system.
debian=followpub-local/debian:$suite
debian_key=$(printf '%s\n' "$suite" "$packages" "${mirrors[@]}" | hash)
rootfs=$cache/rootfs/$suite-$debian_key.tar
if [[ ! -f $rootfs ]]; then
	start=$(date +%s)
	rm -f "$cache"/rootfs/*.tar
	# mmdebstrap picks the output format from the name: keep .tar at the end.
	if ! mmdebstrap --quiet --variant=minbase --include="$packages" "$suite" "$rootfs.tmp.tar" \
		"${mirrors[@]}" 2>"$cache/rootfs/mmdebstrap.log"; then
		tail -n 30 "$cache/rootfs/mmdebstrap.log" >&2
		echo "base-images.sh: mmdebstrap failed (log above): check that Debian's mirror is reachable" >&2
		rm -f "$rootfs.tmp.tar"
		exit 1
	fi
	mv "$rootfs.tmp.tar" "$rootfs"
	echo "base-images.sh: root file system $rootfs made by mmdebstrap in $(($(date +%s) - start))s"
fi
if kept "$debian" "$debian_key"; then
	echo "base-images.sh: kept  $debian"
else
	docker import --change "LABEL $label=$debian_key" --change 'CMD ["bash"]' \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		"$rootfs" "$debian" >/dev/null
	echo "base-images.sh: built $debian (imported from $rootfs)"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/followpub-images.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The Go toolchain: this machine's, as the golang image lays it out (GOPATH /go).
goroot=$(go env GOROOT)
goversion=$(go env GOVERSION)
golang=followpub-local/golang:${goversion#go}
golang_key=$( (echo "$debian_key $goversion" && cat "$goroot/VERSION") | hash)
if kept "$golang" "$golang_key"; then
	echo "base-images.sh: kept  $golang"
else
	mkdir "$tmp/golang"
	cat >"$tmp/golang/Dockerfile" <<EOF
FROM $debian
COPY go /usr/local/go
ENV GOPATH=/go GOTOOLCHAIN=local \
    PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /go
EOF
	cp -a "$goroot" "$tmp/golang/go"
	rm -rf "$tmp/golang/go/test" "$tmp/golang/go/doc"
	build "$golang" "$golang_key" none "$tmp/golang"
	rm -rf "$tmp/golang"
	echo "base-images.sh: built $golang (GOROOT $goroot)"
fi

# The runtime base: the files distroless/static carries, taken from the same root file system.
static=followpub-local/static:$suite
static_key=$(echo "$debian_key static 1" | hash)
if kept "$static" "$static_key"; then
	echo "base-images.sh: kept  $static"
else
	s=$tmp/static
	mkdir -p "$s"
	tar -xf "$rootfs" -C "$s" ./etc/ssl/certs/ca-certificates.crt ./usr/share/zoneinfo
	mkdir -p "$s/tmp" "$s/home/nonroot" "$s/root" "$s/etc"
	chmod 1777 "$s/tmp"
	chown 65532:65532 "$s/home/nonroot"
	cat >"$s/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
	cat >"$s/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
	echo 'hosts: files dns' >"$s/etc/nsswitch.conf"
	tar -C "$s" -c . | docker import --change "LABEL $label=$static_key" \
		--change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' - "$static" >/dev/null
	rm -rf "$s"
	echo "base-images.sh: built $static (CA certificates, zoneinfo, passwd from $rootfs)"
fi

# Kafka: the broker's jars (scripts/kafka/jars.sh) and the kafka-tools jar for the health check.
kafka=followpub-local/kafka:$kafka_version
libs=$(KAFKA_VERSION=$kafka_version "$repo/scripts/kafka/jars.sh")
tools=$cache/kafka-tools/$kafka_version
if [[ ! -f $tools/kafka-tools-$kafka_version.jar ]]; then
	mkdir -p "$tools"
	if ! mvn -B -q dependency:copy -Dartifact="org.apache.kafka:kafka-tools:$kafka_version" \
		-DoutputDirectory="$tools" >"$tmp/mvn.log" 2>&1; then
		sed 's/\x1b\[[0-9;]*m//g' "$tmp/mvn.log" >&2
		echo "base-images.sh: mvn failed to fetch kafka-tools $kafka_version" >&2
		exit 1
	fi
fi
kafka_key=$( (echo "$debian_key $kafka_version" && (cd "$libs" && ls) && (cd "$tools" && ls) &&
	cat "$here"/kafka/Dockerfile "$here"/kafka/*.sh "$here"/kafka/*.properties) | hash)
if kept "$kafka" "$kafka_key"; then
	echo "base-images.sh: kept  $kafka"
else
	k=$tmp/kafka
	mkdir -p "$k/libs" "$k/tools-libs"
	cp "$here"/kafka/Dockerfile "$here"/kafka/*.sh "$here"/kafka/*.properties "$k/"
	cp "$libs"/*.jar "$k/libs/"
	cp "$tools"/*.jar "$k/tools-libs/"
	build "$kafka" "$kafka_key" none "$k" --build-arg "BASE_IMAGE=$debian"
	rm -rf "$k"
	echo "base-images.sh: built $kafka (jars from $libs)"
fi
