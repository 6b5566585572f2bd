# Shared by demo.sh, proxy.sh and test.sh: make .venv with python3 and install the package into it.
#   LITELLM_ALIPAY_VENV     another venv (CI keeps one per tested LiteLLM version)
#   LITELLM_ALIPAY_NO_INSTALL=1  use the venv as it is (the tests run proxy.sh in their own venv)
#   LITELLM_ALIPAY_LITELLM  LiteLLM requirements installed on top (space-separated), e.g.
#                           "litellm[proxy]==1.108.7" or "litellm>=1.108.7,<1.111 semver" (upgraded to the
#                           newest that resolves); see .ci/run
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LITELLM_ALIPAY_VENV:-$ROOT/.venv}"
EXTRAS="${1:-}"
LITELLM_REQ="${LITELLM_ALIPAY_LITELLM:-}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
STAMP="$VENV/.installed-$( { cat "$ROOT/pyproject.toml"; echo "$LITELLM_REQ"; } | python3 -c 'import sys,hashlib;print(hashlib.sha1(sys.stdin.buffer.read()).hexdigest()[:12])')$EXTRAS"
if [ ! -f "$STAMP" ] && [ -z "${LITELLM_ALIPAY_NO_INSTALL:-}" ]; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT$EXTRAS" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
  if [ -n "$LITELLM_REQ" ]; then
    # shellcheck disable=SC2086 # several requirements, space-separated
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade $LITELLM_REQ 2>&1 \
      | grep -v "is ignored: it is neither a file nor a directory" || true
  fi
  "$VENV/bin/python" -c "import litellm_alipay" && touch "$STAMP"
fi
export LITELLM_LOCAL_MODEL_COST_MAP=True
export PATH="$VENV/bin:$PATH"
