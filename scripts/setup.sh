#!/usr/bin/env bash
# Installs what Kappa needs: npm dependencies (when missing or stale) and a current nats-server.
# Install output goes to .tools/setup.log; the terminal gets one line per step.
#
# nats-server, in this order: KAPPA_NATS_SERVER or one on PATH when recent enough; else the one this
# script unpacked before into .tools/; else Debian testing's package, downloaded into .tools/ with apt
# lists and cache of its own (the machine's apt set-up is untouched); else `go install`; else it says how.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
TOOLS="$ROOT/.tools"
LOG="$TOOLS/setup.log"
mkdir -p "$TOOLS"
: >"$LOG"

# The minimum lives in one place, src/log/serverVersion.ts; TESTED is the release we install.
MIN=$(sed -n 's/^export const MIN_NATS_SERVER = "\(.*\)";/\1/p' src/log/serverVersion.ts)
TESTED=$(sed -n 's/^export const TESTED_NATS_SERVER = "\(.*\)";/\1/p' src/log/serverVersion.ts)

step() { echo "setup: $*" >&2; }
fail() {
  step "$1 — see $LOG (last lines below)"
  tail -n 15 "$LOG" | sed 's/^/  | /' >&2
  exit 1
}
# Runs a command with its output in the log.
logged() { echo "+ $*" >>"$LOG"; "$@" >>"$LOG" 2>&1; }

# Stale means a package the lock file names is missing or at another version: compared by content, not
# by mtime (a checkout or rebase makes package-lock.json newer than an install that matches it).
deps_current() {
  [ -d node_modules ] && node -e '
    const fs = require("fs");
    const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8")).packages ?? {};
    for (const [path, p] of Object.entries(lock)) {
      if (!path.startsWith("node_modules/") || path.indexOf("/node_modules/", 1) > 0 || p.optional) continue;
      let v; try { v = JSON.parse(fs.readFileSync(path + "/package.json", "utf8")).version; } catch { process.exit(1); }
      if (v !== p.version) process.exit(1);
    }' 2>/dev/null
}
if ! deps_current; then
  step "installing npm dependencies (better-sqlite3 compiles from source: about a minute)"
  logged npm install --no-fund --no-audit || fail "npm install failed"
fi

version_of() { "$1" --version 2>/dev/null | sed -n 's/.*v\{0,1\}\([0-9][0-9]*\.[0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n1; }
recent_enough() {
  local v
  v=$(version_of "$1")
  [ -n "$v" ] && [ "$(printf '%s\n%s\n' "$MIN" "$v" | sort -V | head -n1)" = "$MIN" ]
}

# An explicit KAPPA_NATS_SERVER is never replaced behind the user's back: too old (or missing) stops here.
if [ -n "${KAPPA_NATS_SERVER:-}" ] && ! { [ -x "$KAPPA_NATS_SERVER" ] && recent_enough "$KAPPA_NATS_SERVER"; }; then
  found=$(version_of "$KAPPA_NATS_SERVER" 2>/dev/null || true)
  step "KAPPA_NATS_SERVER=$KAPPA_NATS_SERVER is not a nats-server $MIN or newer (found: ${found:-none}); unset it or point it at a newer one"
  exit 1
fi

TOO_OLD=""
find_nats() {
  if [ -n "${KAPPA_NATS_SERVER:-}" ]; then echo "$KAPPA_NATS_SERVER"; return 0; fi
  local p
  for p in "$(command -v nats-server 2>/dev/null || true)" /usr/sbin/nats-server /usr/local/sbin/nats-server /usr/bin/nats-server /usr/local/bin/nats-server "$TOOLS/bin/nats-server"; do
    if [ -n "$p" ] && [ -x "$p" ] && recent_enough "$p"; then echo "$p"; return 0; fi
  done
  return 1
}
# The first too-old server found, named when nothing better can be had.
for p in "$(command -v nats-server 2>/dev/null || true)" /usr/sbin/nats-server /usr/local/sbin/nats-server /usr/bin/nats-server /usr/local/bin/nats-server; do
  if [ -z "$TOO_OLD" ] && [ -n "$p" ] && [ -x "$p" ] && ! recent_enough "$p"; then TOO_OLD="$p ($(version_of "$p" || true))"; fi
done

# Debian testing's package: a Go binary with no dependencies, so it runs on Debian 12 as it is.
from_debian_testing() {
  command -v apt-get >/dev/null && command -v dpkg >/dev/null || return 1
  local apt="$TOOLS/apt"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/deb" "$TOOLS/bin"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian testing main" >"$apt/sources.list"
  local opts=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o "Dir::Etc::sourceparts=-" -o "Dir::State::Lists=$apt/lists"
    -o "Dir::Cache=$apt/cache" -o "Dir::State::status=/dev/null" -o "APT::Sandbox::User=root" -o "Debug::NoLocking=1")
  step "downloading nats-server from Debian testing into .tools/ (the system's apt set-up is not touched)"
  logged apt-get "${opts[@]}" update || return 1
  rm -f "$apt/deb"/*.deb
  (cd "$apt/deb" && logged apt-get "${opts[@]}" download nats-server) || return 1
  rm -rf "$TOOLS/nats-server"
  logged dpkg -x "$apt/deb"/nats-server_*.deb "$TOOLS/nats-server" || return 1
  ln -sf ../nats-server/usr/sbin/nats-server "$TOOLS/bin/nats-server"
  recent_enough "$TOOLS/bin/nats-server"
}

from_go() {
  command -v go >/dev/null || return 1
  step "building nats-server v$TESTED with go install into .tools/bin"
  GOBIN="$TOOLS/bin" logged go install "github.com/nats-io/nats-server/v2@v$TESTED" || return 1
  recent_enough "$TOOLS/bin/nats-server"
}

if ! NATS=$(find_nats); then
  if from_debian_testing || from_go; then
    NATS=$(find_nats)
  else
    step "no nats-server $MIN or newer found${TOO_OLD:+ (only $TOO_OLD, too old)}, and none could be fetched (see $LOG)."
    step "get one: a release binary from github.com/nats-io/nats-server/releases, \`go install github.com/nats-io/nats-server/v2@v$TESTED\`, the nats container image, or your package manager; then put it on PATH or set KAPPA_NATS_SERVER"
    exit 1
  fi
fi
step "nats-server $(version_of "$NATS") at $NATS (Kappa needs $MIN or newer)"
