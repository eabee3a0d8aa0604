#!/usr/bin/env bash
# Installs dependencies (as root), builds, and runs every test. This is what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then bash scripts/install-deps.sh; fi
bash scripts/build.sh
bash scripts/check-purity.sh
ctest --test-dir build --output-on-failure --parallel 2 --timeout 600
