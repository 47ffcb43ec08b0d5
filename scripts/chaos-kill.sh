#!/usr/bin/env bash
# The long chaos run: SIGKILLs the worker 100 times (KAPPA_KILLS) during a 200,000-event replay,
# then checks the final view's content digest against a reference built from the same events.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
KAPPA_KILLS="${KAPPA_KILLS:-100}" npx vitest run test/crash.int.test.ts -t "SIGKILLs"
