#!/usr/bin/env bash
# fuzz.sh — run every fuzz target in the module briefly (FUZZTIME each, default 100000x: that
# many inputs, 2–15 s a target here).
#
#   scripts/fuzz.sh            # all targets
#   FUZZTIME=5000000x scripts/fuzz.sh
#
# The default is a count, not a duration: with a duration, Go 1.26's fuzzing coordinator can fail
# a target with a bare "context deadline exceeded" when the time runs out while a worker is busy,
# with no failing input (golang/go#75804, fixed in Go 1.27). It did so once in CI here.
#
# Targets are found by name (func FuzzXxx in *_test.go). A failure leaves its input under the
# package's testdata/fuzz/ — commit it, so that plain `go test` replays it from then on.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fuzztime=${FUZZTIME:-100000x}
status=0
while IFS=: read -r file line; do
	name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]+).*/\1/' <<<"$line")
	dir=$(dirname "$file")
	echo "== $dir $name ($fuzztime)"
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$dir" || status=1
done < <(grep -rE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+\(' . | grep -v '/vendor/' | sort)
exit $status
