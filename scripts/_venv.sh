# Shared by demo.sh, proxy.sh and test.sh: make .venv with python3 and install the package into it.
#   LITELLM_ALIPAY_VENV     another venv (CI keeps one per tested LiteLLM version)
#   LITELLM_ALIPAY_NO_INSTALL=1  use the venv as it is (the tests run proxy.sh in their own venv)
#   LITELLM_ALIPAY_LITELLM  LiteLLM requirements installed on top (space-separated), e.g.
#                           "litellm[proxy]==1.108.7" or "litellm>=1.108.7,<1.111 semver" (upgraded to the
#                           newest that resolves); see .ci/run
# A first run installs for a minute or two: each step prints one line with the time elapsed, and pip's
# own progress (one line per package, bars on a terminal) shows in between. Later runs print nothing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LITELLM_ALIPAY_VENV:-$ROOT/.venv}"
EXTRAS="${1:-}"
LITELLM_REQ="${LITELLM_ALIPAY_LITELLM:-}"
_VENV_STARTED=$SECONDS
_step() {  # one progress line on stderr, so a caller's stdout stays its own
  echo "litellm-alipay [$((SECONDS - _VENV_STARTED))s] $*" >&2
}
_pip() {  # pip with its own progress on stderr, minus the lines about what is already there
  local status
  set +e
  "$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar on "$@" 2>&1 \
    | grep --line-buffered -v -e "is ignored: it is neither a file nor a directory" -e "^Requirement already satisfied" >&2
  status=${PIPESTATUS[0]}
  set -e
  return "$status"
}
if [ ! -x "$VENV/bin/python" ]; then
  _step "creating $VENV"
  python3 -m venv "$VENV"
fi
STAMP="$VENV/.installed-$( { cat "$ROOT/pyproject.toml"; echo "$LITELLM_REQ"; } | python3 -c 'import sys,hashlib;print(hashlib.sha1(sys.stdin.buffer.read()).hexdigest()[:12])')$EXTRAS"
if [ ! -f "$STAMP" ] && [ -z "${LITELLM_ALIPAY_NO_INSTALL:-}" ]; then
  _step "installing litellm-alipay$EXTRAS and its dependencies into $VENV (once: minutes the first time; pip lists each package, then installs them all)"
  _pip -e "$ROOT$EXTRAS"
  if [ -n "$LITELLM_REQ" ]; then
    _step "installing $LITELLM_REQ"
    # shellcheck disable=SC2086 # several requirements, space-separated
    _pip --upgrade $LITELLM_REQ
  fi
  "$VENV/bin/python" -c "import litellm_alipay" && touch "$STAMP"
  _step "installed; the next runs reuse $VENV"
fi
export LITELLM_LOCAL_MODEL_COST_MAP=True
export PATH="$VENV/bin:$PATH"
