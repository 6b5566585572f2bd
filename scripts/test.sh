#!/usr/bin/env bash
# Runs the whole test suite in its own virtual environment (.venv).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" "[test]"
cd "$ROOT"
exec python -m pytest -p no:cacheprovider "$@"
