#!/usr/bin/env bash
# From the demo to a running LiteLLM proxy in one command: installs the [proxy] extra into .venv, starts the
# Alipay gateway emulator (throwaway keys in .demo/), then the proxy with the shipped config/litellm.yaml,
# and prints a working curl and OpenAI SDK call. Ctrl-C stops both.
#   PROXY_PORT (4000), EMULATOR_PORT (8080), LITELLM_MASTER_KEY (sk-change-me), ALIPAY_DEMO_DIR (.demo)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" "[proxy]"
cd "$ROOT"
PROXY_PORT="${PROXY_PORT:-4000}"
EMULATOR_PORT="${EMULATOR_PORT:-8080}"
DEMO_DIR="$(mkdir -p "${ALIPAY_DEMO_DIR:-$ROOT/.demo}" && cd "${ALIPAY_DEMO_DIR:-$ROOT/.demo}" && pwd)"
export LITELLM_MASTER_KEY="${LITELLM_MASTER_KEY:-sk-change-me}"  # the proxy refuses sk-1234

rm -f "$DEMO_DIR/env"
litellm-alipay emulator --demo --port "$EMULATOR_PORT" --keys-dir "$DEMO_DIR/keys" \
  --env-file "$DEMO_DIR/env" >"$DEMO_DIR/emulator.log" 2>&1 &
EMULATOR_PID=$!
PROXY_PID=""
cleanup() {
  [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null || true
  kill "$EMULATOR_PID" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# the emulator writes its settings file once it listens (bounded wait: 30 s)
for _ in $(seq 300); do
  [ -s "$DEMO_DIR/env" ] && break
  kill -0 "$EMULATOR_PID" 2>/dev/null || { cat "$DEMO_DIR/emulator.log" >&2; exit 1; }
  sleep 0.1
done
[ -s "$DEMO_DIR/env" ] || { echo "the emulator did not start; see $DEMO_DIR/emulator.log" >&2; exit 1; }
set -a; . "$DEMO_DIR/env"; set +a
export REGIONAL_API_BASE="${ALIPAY_EMULATOR_URL}/v1" REGIONAL_API_KEY=unused

litellm --config "$ROOT/config/litellm.yaml" --host 127.0.0.1 --port "$PROXY_PORT" &
PROXY_PID=$!
MODELS="$(python - "$PROXY_PORT" "$PROXY_PID" <<'PY'
import json, os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("the proxy exited; its output is above")
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health/liveliness", timeout=2).read()
        break
    except OSError:
        time.sleep(0.2)
else:
    sys.exit("the proxy did not answer within 120 s")
# what it serves, as a client sees it: the model groups of /v1/models
request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models",
                                 headers={"Authorization": "Bearer " + os.environ["LITELLM_MASTER_KEY"]})
with urllib.request.urlopen(request, timeout=30) as answer:
    print(", ".join(dict.fromkeys(model["id"] for model in json.load(answer)["data"])))
PY
)"
cat <<MSG

The LiteLLM proxy is ready on http://127.0.0.1:$PROXY_PORT, in front of the Alipay gateway emulator on
$ALIPAY_EMULATOR_URL.
Models: $MODELS
Try:

curl -s http://127.0.0.1:$PROXY_PORT/v1/chat/completions -H "Authorization: Bearer $LITELLM_MASTER_KEY" -H "Content-Type: application/json" -d '{"model": "fin-chat", "messages": [{"role": "user", "content": "hello"}]}'

python -c 'import openai; c = openai.OpenAI(base_url="http://127.0.0.1:$PROXY_PORT", api_key="$LITELLM_MASTER_KEY"); print(c.chat.completions.create(model="fin-chat", messages=[{"role": "user", "content": "hello"}]).choices[0].message.content)'

(the second line needs the openai package: it is in .venv — source .venv/bin/activate). Ctrl-C stops both.
MSG
wait "$PROXY_PID"
