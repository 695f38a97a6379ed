#!/bin/sh
# Runs the local provider and one client together on loopback (the http.* ctests):
#   run_loopback.sh LOCAL_PROVIDER CLIENT WORK_DIR
# The provider listens on a free port and enforces buckets of 2 s (so that 4 s of warm-up
# spend any burst left); the client, told that burst, runs for 12 s and checks from the
# provider's own counts that under 1 % of its requests were answered 429 and that the
# binding limit was at least 85 % used from 4 s to 12 s. It starts at the seed provider's
# limits (36k generated tokens per minute) and learns the 60k from the headers.
set -eu
# Loopback never goes through a proxy, whatever the environment says.
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
provider=$1 client=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
# Under ThreadSanitizer the provider reports nothing: its HTTP library is not instrumented
# (false reports), and it is a test fixture; the client is checked in full.
TSAN_OPTIONS="${TSAN_OPTIONS:-} report_bugs=0" "$provider" --port 0 --port-file "$work/port" --exit-after 60 \
  --limits 6000,3600000,900000,60000 --enforcement bucket --burst-s 2 --per-token-ms 2 \
  >"$work/provider.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
i=0
while [ ! -s "$work/port" ]; do
  i=$((i + 1))
  if [ $i -gt 200 ] || ! kill -0 $pid 2>/dev/null; then
    echo "the local provider did not start:" && cat "$work/provider.log"
    exit 1
  fi
  sleep 0.05
done
RATEGOV_BASE_URL="http://127.0.0.1:$(cat "$work/port")/v1" RATEGOV_API_KEY= \
  RATEGOV_MODEL=local-model "$client" --seconds 12 --warmup 4 --concurrency 64 --burst-s 2 \
  --check-429 0.01 --check-utilization 0.85
