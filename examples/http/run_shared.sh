#!/bin/sh
# Runs the local provider and P client processes sharing ONE account's limits (the
# http.shared_* ctests, and the full measurement):
#   run_shared.sh LOCAL_PROVIDER CLIENT WORK_DIR [options]
#     --processes P          client processes, started together (4)
#     --concurrency C        calls at once in each (16)
#     --seconds S            how long each runs (60)
#     --warmup W             utilization is measured from W s to the end (4)
#     --check-429 F          fail if more than this share of requests got 429 (0.001)
#     --check-utilization U  fail if the binding limit was less used than this (0.97)
#     --redis-server PATH    CLIENT keeps its limits in Redis (curl_client_redis): start
#                            this redis-server on a free loopback port for the run
# CLIENT is a client built with a shared store. curl_client_shm: every process attaches the
# same key of a fresh shared-memory segment, named for this run and removed at the end
# (also on failure). curl_client_redis (with --redis-server): every process leases from the
# same key of a redis-server of this run, stopped at the end. The provider listens on a free port and enforces buckets of 2 s, as in
# run_loopback.sh; the clients start at the seed provider's limits and learn the 60k
# generated tokens per minute from the headers.
#
# The verdicts come from the provider's counts for the account, all processes together:
# - utilization and 429 share in one window: the first process judges them (--check-*)
#   between its warm-up and its end, which are everyone's (all start together);
# - the 429 share over the whole run, from the provider's final counts (this script);
# - "never over the limit": the provider keeps no per-window maxima; its buckets admit
#   nothing over a limit and answer 429 instead, so its 429 count is its own verdict of the
#   requests that would have gone over: 0 means never over the limit.
# The full measurement: 4 processes x 16 calls for 60 s, util >= 0.97, 429 <= 0.001:
#   examples/http/run_shared.sh BUILD/examples/http/local_provider \
#     BUILD/examples/http/curl_client_shm /tmp/shared.run --seconds 60
#   examples/http/run_shared.sh BUILD/examples/http/local_provider \
#     BUILD/examples/http/curl_client_redis /tmp/shared.run --seconds 60 \
#     --redis-server /usr/bin/redis-server
set -eu
# Loopback never goes through a proxy, whatever the environment says.
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
if [ $# -lt 3 ]; then
  echo "usage: $0 LOCAL_PROVIDER CLIENT WORK_DIR [--processes P] [--concurrency C]" \
    "[--seconds S] [--warmup W] [--check-429 F] [--check-utilization U]" \
    "[--redis-server PATH]" >&2
  exit 2
fi
provider=$1 client=$2 work=$3
shift 3
processes=4 concurrency=16 seconds=60 warmup=4 check_429=0.001 check_util=0.97 redis_server=""
while [ $# -gt 0 ]; do
  if [ $# -lt 2 ]; then
    echo "$0: $1 needs a value" >&2
    exit 2
  fi
  case $1 in
  --processes) processes=$2 ;;
  --concurrency) concurrency=$2 ;;
  --seconds) seconds=$2 ;;
  --warmup) warmup=$2 ;;
  --check-429) check_429=$2 ;;
  --check-utilization) check_util=$2 ;;
  --redis-server) redis_server=$2 ;;
  *)
    echo "$0: unknown option $1" >&2
    exit 2
    ;;
  esac
  shift 2
done
case $processes in
'' | *[!0-9]* | 0)
  echo "$0: --processes must be a whole number of at least 1, got '$processes'" >&2
  exit 2
  ;;
esac

rm -rf "$work" && mkdir -p "$work"
# A segment of this run only: nothing learned by an earlier run, nothing left behind.
segment="/rategov-shared-$$-$(date +%s)"
pids=""
# shellcheck disable=SC2317 # run by the trap
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  [ -z "${provider_pid:-}" ] || kill "$provider_pid" 2>/dev/null || true
  [ -z "${redis_pid:-}" ] || kill "$redis_pid" 2>/dev/null || true
  rm -f "/dev/shm${segment}" # Linux names POSIX shared memory there
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Under ThreadSanitizer the provider reports nothing: its HTTP library is not instrumented
# (false reports), and it is a test fixture; the clients are checked in full.
TSAN_OPTIONS="${TSAN_OPTIONS:-} report_bugs=0" "$provider" --port 0 --port-file "$work/port" \
  --exit-after "$((${seconds%.*} + 120))" \
  --limits 6000,3600000,900000,60000 --enforcement bucket --burst-s 2 --per-token-ms 2 \
  >"$work/provider.log" 2>&1 &
provider_pid=$!
i=0
while [ ! -s "$work/port" ]; do
  i=$((i + 1))
  if [ $i -gt 200 ] || ! kill -0 $provider_pid 2>/dev/null; then
    echo "the local provider did not start:" && cat "$work/provider.log"
    exit 1
  fi
  sleep 0.05
done
port=$(cat "$work/port")

# The store every process names: a segment of this run, or a redis-server of this run on a
# free loopback port (a few ports tried: one may be taken meanwhile).
if [ -n "$redis_server" ]; then
  tries=0
  while :; do
    tries=$((tries + 1))
    redis_port=$((20000 + ($$ * 7 + tries * 7919) % 40000))
    "$redis_server" --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
      --daemonize no --dir "$work" >"$work/redis.log" 2>&1 &
    redis_pid=$!
    i=0
    while [ $i -lt 100 ] && kill -0 "$redis_pid" 2>/dev/null &&
      ! grep -q "Ready to accept connections" "$work/redis.log"; do
      i=$((i + 1))
      sleep 0.05
    done
    if grep -q "Ready to accept connections" "$work/redis.log"; then break; fi
    kill "$redis_pid" 2>/dev/null || true
    redis_pid=""
    if [ $tries -ge 5 ]; then
      echo "redis-server did not start:" && cat "$work/redis.log"
      exit 1
    fi
  done
  store_flags="--redis 127.0.0.1:$redis_port"
  store_text="limits in Redis on port $redis_port"
else
  store_flags="--shm $segment"
  store_text="limits in shared memory $segment"
fi
export RATEGOV_BASE_URL="http://127.0.0.1:$port/v1" RATEGOV_MODEL=local-model
# One account: every process sends the same API key.
export RATEGOV_API_KEY=shared-account-key

echo "$processes processes x $concurrency calls at once for $seconds s, one account," \
  "$store_text"
n=1
while [ $n -le "$processes" ]; do
  checks=""
  [ $n -ne 1 ] || checks="--check-429 $check_429 --check-utilization $check_util"
  # shellcheck disable=SC2086 # $checks and $store_flags are flags or none
  "$client" $store_flags --key local-model --seconds "$seconds" --warmup "$warmup" \
    --concurrency "$concurrency" --burst-s 2 $checks >"$work/client.$n.log" 2>&1 &
  pids="$pids $!"
  n=$((n + 1))
done

status=0
n=1
for p in $pids; do
  if ! wait "$p"; then
    echo "client $n failed (its output follows)"
    status=1
  fi
  n=$((n + 1))
done
pids=""
n=1
while [ $n -le "$processes" ]; do
  echo "--- client $n"
  cat "$work/client.$n.log"
  n=$((n + 1))
done

# The provider's final counts (printed when it stops): the whole run, all processes.
kill "$provider_pid" 2>/dev/null || true
wait "$provider_pid" || true
provider_pid=""
count() { sed -n "s/^ *\"$1\": \([0-9][0-9]*\),*$/\1/p" "$work/provider.log" | head -n 1; }
submitted=$(count submitted) ok=$(count ok) over=$(count over_limit) shed=$(count shed)
if [ -z "$submitted" ] || [ -z "$over" ]; then
  echo "FAIL: no final counts from the provider:" && cat "$work/provider.log"
  exit 1
fi
echo "--- the provider, whole run, all $processes processes together"
echo "requests: $submitted, $ok admitted, $over answered 429, $shed answered 503"
awk -v over="$over" -v n="$submitted" -v max="$check_429" 'BEGIN {
  share = n > 0 ? over / n : 0
  printf "429 share over the whole run: %.5f (at most %s)\n", share, max
  if (over == 0)
    print "never over the limit: yes (the provider refused no request as over its limit)"
  else
    printf "never over the limit: NO, the provider refused %d requests as over its limit\n", over
  exit share > max ? 1 : 0
}' || status=1
[ "$submitted" -gt 0 ] || status=1
if [ $status -eq 0 ]; then
  echo "PASS"
else
  echo "FAIL"
fi
exit $status
