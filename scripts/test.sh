#!/usr/bin/env bash
# The whole test suite: type-check, then unit, integration and e2e tests against real nats-servers the tests start.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup-browser.sh
npx tsc --noEmit -p .
npx vitest run "$@"
