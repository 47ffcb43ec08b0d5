#!/usr/bin/env bash
# The demo: installs what is needed, then runs scripts/demo.ts (kappa dev, events, deploy, query, redeploy, promote, rollback).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec npx tsx scripts/demo.ts "$@"
