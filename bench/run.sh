#!/usr/bin/env bash
# The benchmark, one command: `bash bench/run.sh` (full, several minutes) or `bash bench/run.sh --quick`.
# Creates or reuses .venv exactly like the other scripts (scripts/_venv.sh), with the [bench] extra.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/_venv.sh" "[bench]" >&2  # pip noise off stdout: stdout is the table
cd "$ROOT"
exec python -m bench "$@"
