#!/usr/bin/env bash
# with-broker.sh — run a command with a test Kafka broker in its environment.
#
#   scripts/kafka/with-broker.sh go test -race -count=1 ./...
#
# When FOLLOWPUB_TEST_KAFKA_BROKERS is already set (a broker you run yourself), the command simply
# runs. Otherwise (or always, with FOLLOWPUB_KAFKA_FRESH=1) a private broker is started by start.sh
# in a temporary directory, its env file is sourced, the command runs, and the broker is stopped and
# its directory removed whatever the command's outcome. KAFKA_VERSION picks the broker version.
# Exit status: the command's.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ $# -eq 0 ]]; then
	echo "usage: $0 COMMAND [ARG...]" >&2
	exit 2
fi

if [[ -n ${FOLLOWPUB_TEST_KAFKA_BROKERS:-} && -z ${FOLLOWPUB_KAFKA_FRESH:-} ]]; then
	echo "with-broker.sh: using FOLLOWPUB_TEST_KAFKA_BROKERS=$FOLLOWPUB_TEST_KAFKA_BROKERS" >&2
	exec "$@"
fi
unset FOLLOWPUB_TEST_KAFKA_BROKERS FOLLOWPUB_TEST_KAFKA_SASL_BROKERS FOLLOWPUB_TEST_KAFKA_SASL_MECHANISMS FOLLOWPUB_TEST_KAFKA_SASL_USER \
	FOLLOWPUB_TEST_KAFKA_SASL_PASSWORD FOLLOWPUB_TEST_KAFKA_CA_FILE FOLLOWPUB_TEST_KAFKA_VERSION FOLLOWPUB_TEST_KAFKA_PID

dir=$(mktemp -d "${TMPDIR:-/tmp}/followpub-kafka.XXXXXX")
status=
# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
	if [[ -n $status && $status -ne 0 && -f $dir/kafka.log ]]; then
		echo "with-broker.sh: command failed ($status); last lines of the broker log:" >&2
		tail -n 20 "$dir/kafka.log" >&2
	fi
	"$here/stop.sh" "$dir" || true
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The watchdog takes the broker down if this shell is killed (where the trap cannot run).
FOLLOWPUB_KAFKA_PARENT_PID=$$ "$here/start.sh" "$dir" >/dev/null
# shellcheck source=/dev/null
. "$dir/env"
export KAFKA_VERSION=$FOLLOWPUB_TEST_KAFKA_VERSION

set +e
"$@"
status=$?
set -e
exit "$status"
