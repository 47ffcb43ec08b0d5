#!/usr/bin/env bash
# Installs what Kappa needs: npm dependencies (when missing or stale) and nats-server (apt-get when root, else says how).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies (better-sqlite3 compiles from source: about a minute)" >&2
  npm install --no-fund --no-audit >&2
fi

find_nats() {
  if [ -n "${KAPPA_NATS_SERVER:-}" ] && [ -x "$KAPPA_NATS_SERVER" ]; then echo "$KAPPA_NATS_SERVER"; return 0; fi
  for p in "$(command -v nats-server 2>/dev/null || true)" /usr/sbin/nats-server /usr/local/sbin/nats-server /usr/bin/nats-server /usr/local/bin/nats-server; do
    if [ -n "$p" ] && [ -x "$p" ]; then echo "$p"; return 0; fi
  done
  return 1
}

if ! find_nats >/dev/null; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "setup: installing nats-server with apt-get" >&2
    (apt-get update -qq || true) >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >&2
  else
    echo "setup: nats-server is missing. Install it with:  sudo apt-get install -y nats-server" >&2
    echo "       (or put a nats-server 2.9+ binary on PATH, or set KAPPA_NATS_SERVER to it)" >&2
    exit 1
  fi
fi
# Debian's Chromium, for the status-page browser test (skipped with a message where it cannot be installed).
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "setup: installing chromium with apt-get (for the status-page browser test)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2 || echo "setup: chromium could not be installed; the browser test will be skipped" >&2
fi
echo "setup: nats-server at $(find_nats) ($("$(find_nats)" --version))" >&2
