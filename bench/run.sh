#!/usr/bin/env bash
# The benchmark, one command: `bash bench/run.sh` (full, several minutes) or `bash bench/run.sh --quick`.
# `bash bench/run.sh proxy|sizes|breakdown|payments|routing|profile|plot [args]` runs that part (python -m bench.<part>).
# Creates or reuses .venv exactly like the other scripts (scripts/_venv.sh), with the [bench] extra.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/_venv.sh" "[bench]" >&2  # pip noise off stdout: stdout is the table
cd "$ROOT"
case "${1:-}" in
  proxy|sizes|breakdown|payments|routing|profile|plot) part="$1"; shift; exec python -m "bench.$part" "$@" ;;
esac
exec python -m bench "$@"
