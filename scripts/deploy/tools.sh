#!/usr/bin/env bash
# tools.sh — make sure the tools the deploy/ tests use are installed: promtool and prometheus
# (Debian's `prometheus` package) and a headless browser (Debian's `chromium`).
#
#   scripts/deploy/tools.sh          # installs what is missing (apt-get, needs root)
#
# The `prometheus` package would start its own service (port 9090, /var/lib/prometheus) on a
# machine without a policy that forbids it; the tests run their own Prometheus instead, so a
# packaged service this script installed is stopped and disabled. Without root or apt-get it
# names what is missing and exits 1.
set -euo pipefail

need=()
command -v promtool >/dev/null && command -v prometheus >/dev/null || need+=(prometheus)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || need+=(chromium)
if [[ ${#need[@]} -eq 0 ]]; then
	exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
	echo "tools.sh: missing ${need[*]}: install the Debian package(s) ${need[*]} (apt-get install -y ${need[*]}), as root" >&2
	exit 1
fi
echo "tools.sh: installing ${need[*]} (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
# No recommends: the node exporter and its timers are not wanted.
apt-get install -y -q --no-install-recommends "${need[@]}" >&2

if [[ " ${need[*]} " == *" prometheus "* ]]; then
	# Stop and disable the packaged service if the package started it (this script's own tests
	# never use it).
	if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
		systemctl disable --now prometheus.service >/dev/null 2>&1 || true
	fi
	if [[ -x /etc/init.d/prometheus ]]; then
		/etc/init.d/prometheus stop >/dev/null 2>&1 || true
		update-rc.d prometheus disable >/dev/null 2>&1 || true
	fi
	if [[ -f /run/prometheus/prometheus.pid ]] && kill -0 "$(cat /run/prometheus/prometheus.pid)" 2>/dev/null; then
		echo "tools.sh: the packaged prometheus service is still running (pid $(cat /run/prometheus/prometheus.pid)); stop it" >&2
		exit 1
	fi
fi
