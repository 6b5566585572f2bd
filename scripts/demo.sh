#!/usr/bin/env bash
# The main job: starts the embedded Alipay gateway emulator and runs the demo against it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" ""
cd "$ROOT"
exec litellm-alipay demo "$@"
