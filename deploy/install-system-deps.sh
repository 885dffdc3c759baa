#!/bin/sh
# Installs the system programs Groundwork's tests and benchmarks drive for real:
# nginx (end-to-end test), ffmpeg (video jobs; ffprobe comes with it), wrk (B1 load
# generator), docker-compose (validates deploy/docker-compose.yml offline; no engine
# needed), chromium (the console's browser test drives Debian's build with Playwright),
# prometheus (its promtool checks and unit-tests deploy/prometheus) and clamav-daemon
# (the upload malware scan's test runs clamd on a one-signature database). Only what is
# missing, only with apt-get, only as root; anywhere else it
# says what is missing and exits 0, and the tests that need a program fail by name.
set -eu

missing=""
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$missing nginx"
command -v ffmpeg >/dev/null 2>&1 || missing="$missing ffmpeg"
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
command -v docker-compose >/dev/null 2>&1 || missing="$missing docker-compose"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
command -v clamd >/dev/null 2>&1 || [ -x /usr/sbin/clamd ] || missing="$missing clamav-daemon"

if [ -z "$missing" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: missing:$missing (no apt-get here; install them yourself)" >&2
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-system-deps: missing:$missing (run as root to install with apt-get)" >&2
    exit 0
fi

echo "install-system-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
# An update first: a fresh machine's package lists may be empty or stale.
apt-get update -qq
# shellcheck disable=SC2086  # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing >/dev/null
