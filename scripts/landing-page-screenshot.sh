#!/usr/bin/env bash
# Regenerates docs/landing-page.png: the demo node (make run) after a minute of history, in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-9519}
ADAPTER_PORT=${ADAPTER_PORT:-9520}
swift build --product accel-exporter --product accel-simulator --product accel-metrics-adapter >/dev/null
PORT=$PORT ADAPTER_PORT=$ADAPTER_PORT setsid ./scripts/demo.sh --collect.interval 500ms > /tmp/landing-demo.log 2>&1 &
demo=$!
trap 'kill -- -$demo 2>/dev/null || true' EXIT
sleep ${WAIT:-60}
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1300,1150 \
  --screenshot="$PWD/docs/landing-page.png" "http://127.0.0.1:$PORT/" 2>/dev/null
echo "wrote docs/landing-page.png"
