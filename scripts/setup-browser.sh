#!/usr/bin/env bash
# Debian's Chromium, for the status-page browser test only (the demo does not need it). Where it cannot be
# installed, the browser test is skipped with a message. Output goes to .tools/setup-browser.log.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools
LOG=.tools/setup-browser.log
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "setup: installing chromium with apt-get for the browser test (log: $LOG)" >&2
  { (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >"$LOG" 2>&1 ||
    echo "setup: chromium could not be installed (see $LOG); the browser test will be skipped" >&2
else
  echo "setup: chromium is missing and this is not root; the browser test will be skipped (sudo apt-get install chromium)" >&2
fi
