#!/usr/bin/env bash
# jars.sh — fetch the Apache Kafka broker jars from Maven Central (once) and print their directory.
#
#   scripts/kafka/jars.sh            # KAFKA_VERSION (default 4.4.0)
#
# The jars are kept in ~/.m2 by Maven and copied into
# ${FOLLOWPUB_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/followpub/kafka}/<version>/libs,
# which start.sh puts on the classpath. A finished directory is never touched again; two runs
# fetching at once each fill a private directory and the first rename wins.
# Exit status: 0 ok (the directory on stdout), 3 when Maven is missing and nothing is cached,
# 1 on any other failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
version=${KAFKA_VERSION:-4.4.0}
cache=${FOLLOWPUB_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/followpub/kafka}
libs=$cache/$version/libs

if [[ -f $libs/.complete ]]; then
	echo "$libs"
	exit 0
fi
if ! command -v mvn >/dev/null 2>&1; then
	echo "jars.sh: Maven (mvn) is not installed and $libs is not cached" >&2
	exit 3
fi

# The 3.x line needs the reload4j binding; the pom's default profile is the 4.x line.
profile=()
case $version in
3.*) profile=(-Pkafka3) ;;
esac

mkdir -p "$cache/$version"
tmp=$(mktemp -d "$cache/$version/libs.tmp.XXXXXX")
trap 'rm -rf "$tmp" "$tmp.log"' EXIT
echo "jars.sh: fetching kafka_2.13 $version from Maven Central into $libs" >&2
# Maven 3.8 prints colour codes even in batch mode: keep its output for failures only.
if ! mvn -B -q -f "$here/pom.xml" "${profile[@]}" -Dkafka.version="$version" \
	-DoutputDirectory="$tmp" dependency:copy-dependencies >"$tmp.log" 2>&1; then
	sed 's/\x1b\[[0-9;]*m//g' "$tmp.log" >&2
	echo "jars.sh: mvn failed to fetch kafka_2.13 $version" >&2
	exit 1
fi
if ! ls "$tmp"/kafka_2.13-"$version".jar >/dev/null 2>&1; then
	echo "jars.sh: kafka_2.13-$version.jar missing after the fetch" >&2
	exit 1
fi
touch "$tmp/.complete"
# First finisher wins; a loser's copy is removed by the trap. A directory left half-made by an
# older, interrupted layout (no .complete) is replaced.
if [[ -d $libs && ! -f $libs/.complete ]]; then
	rm -rf "$libs"
fi
mv -T "$tmp" "$libs" 2>/dev/null || true
echo "$libs"
