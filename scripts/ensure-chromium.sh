#!/bin/sh
# Debian's Chromium for the browser tests (tests/test_browser.py drives it with Playwright; no browser is
# downloaded). Idempotent: does nothing when /usr/bin/chromium is already there.
set -eu
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
echo "Installing Debian chromium + chromium-driver for the browser tests"
$SUDO apt-get update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver
