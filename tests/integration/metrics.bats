#!/usr/bin/env bats
# The Prometheus metrics page (metricsProvider.* in zoo.cfg, as ZooKeeper 3.8 serves it), as an
# operator's scraper sees it: curl gets Prometheus text that an independent parser
# (python3-prometheus-client) reads, with ZooKeeper's metric names, request counts by opcode and
# latency histograms that grow with the requests clients send.
# One standalone server for the whole file.

load helpers

PROVIDER=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider

# hooked: the znoded under test calls metrics_start (the string below is only linked in then).
hooked() {
  grep -q -a "serving Prometheus metrics" "$ZN_ZNODED"
}

setup_file() {
  zn_state_init
  export ZN_STATE_DIR
  if [ "$ZN_TARGET" != znoded ] || ! hooked; then return 0; fi
  METRICS_PORT="$(free_port 127.0.0.1)"
  echo "$METRICS_PORT" > "$ZN_STATE_DIR/metrics_port"
  start_server "metricsProvider.className=$PROVIDER" "metricsProvider.httpPort=$METRICS_PORT" \
    "metricsProvider.httpHost=127.0.0.1"
}

teardown_file() {
  stop_all
}

setup() {
  zn_load_bats_libs
  [ "$ZN_TARGET" = znoded ] || skip "metrics over HTTP are tested against znoded only (Debian's ZooKeeper lacks the Prometheus provider's jars)"
  hooked || skip "znoded does not call metrics_start yet (server.c hook pending)"
  METRICS_URL="http://127.0.0.1:$(cat "$ZN_STATE_DIR/metrics_port")"
  # The listener is up before the client port answers, but poll rather than assume.
  wait_until 10 "the metrics port to answer" curl -sf -o /dev/null "$METRICS_URL/metrics"
}

teardown() {
  [ -n "${BATS_TEST_COMPLETED:-}" ] || member_log_tail 1 20
}

# scrape FILE: GET /metrics into FILE; fails on any HTTP error.
scrape() {
  curl -sS -f --max-time 10 -o "$1" "$METRICS_URL/metrics"
}

# normalized FILE: every sample, parsed by prometheus_client, as `name{k="v",...} value` with
# labels sorted and values as floats; fails if the text does not parse.
normalized() {
  "$ZN_PYTHON" - "$1" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
for family in text_string_to_metric_families(text):
    for s in family.samples:
        labels = ",".join('%s="%s"' % kv for kv in sorted(s.labels.items()))
        print("%s{%s} %r" % (s.name, labels, float(s.value)))
PY
}

# value FILE SERIES: the value of one series (`name{labels}` as normalized prints it), 0 when
# absent (a counter with no requests yet has no series).
value() {
  local v
  v="$(normalized "$1" | awk -v k="$2" 'index($0, k " ") == 1 { print $2 }')"
  echo "${v:-0.0}"
}

# requests N: in one session, create N nodes under /metrics-test, get each, and check one
# missing node (one NONODE error).
requests() {
  "$ZN_PYTHON" - "$(member_connect 1)" "$1" <<'PY'
import sys
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1], timeout=10.0)
zk.start(timeout=30)
n = int(sys.argv[2])
zk.ensure_path("/metrics-test")
for i in range(n):
    path = zk.create("/metrics-test/n-", b"x" * 100, sequence=True)
    zk.get(path)
try:
    zk.get("/metrics-test/never-there")
except Exception:
    pass
zk.stop()
zk.close()
PY
}

@test "the metrics page is Prometheus text 0.0.4 with ZooKeeper's metric names" {
  run curl -sS -f -D "$BATS_TEST_TMPDIR/headers" -o "$BATS_TEST_TMPDIR/page" "$METRICS_URL/metrics"
  assert_success
  run grep -i '^content-type:' "$BATS_TEST_TMPDIR/headers"
  assert_output --partial "text/plain; version=0.0.4"
  run normalized "$BATS_TEST_TMPDIR/page"
  assert_success
  for name in znode_count watch_count ephemerals_count approximate_data_size \
      num_alive_connections outstanding_requests packets_received packets_sent \
      global_sessions uptime readlatency_count updatelatency_count fsynctime_count; do
    assert_output --partial "$name{} "
  done
  assert_output --partial 'znodefs_server_state{state="standalone"} 1.0'
  run grep -c '^# TYPE readlatency summary$' "$BATS_TEST_TMPDIR/page"
  assert_output 1
  # / is the same page
  run curl -sS -f "$METRICS_URL/"
  assert_success
  assert_output --partial "# TYPE znode_count gauge"
}

@test "request counts, errors and latencies grow with the requests clients send" {
  local before="$BATS_TEST_TMPDIR/before" after="$BATS_TEST_TMPDIR/after"
  scrape "$before"
  requests 5
  scrape "$after"
  local c0 c1 g0 g1 e0 e1 z0 z1 r0 r1 u0 u1 f0 f1 inf cnt
  c0="$(value "$before" 'znodefs_requests_total{op="create"}')"
  c1="$(value "$after" 'znodefs_requests_total{op="create"}')"
  g0="$(value "$before" 'znodefs_requests_total{op="getData"}')"
  g1="$(value "$after" 'znodefs_requests_total{op="getData"}')"
  e0="$(value "$before" 'znodefs_request_errors_total{op="getData"}')"
  e1="$(value "$after" 'znodefs_request_errors_total{op="getData"}')"
  z0="$(value "$before" 'znode_count{}')"
  z1="$(value "$after" 'znode_count{}')"
  r0="$(value "$before" 'readlatency_count{}')"
  r1="$(value "$after" 'readlatency_count{}')"
  u0="$(value "$before" 'updatelatency_count{}')"
  u1="$(value "$after" 'updatelatency_count{}')"
  f0="$(value "$before" 'fsynctime_count{}')"
  f1="$(value "$after" 'fsynctime_count{}')"
  echo "create $c0->$c1 getData $g0->$g1 errors $e0->$e1 znodes $z0->$z1 reads $r0->$r1 updates $u0->$u1 fsyncs $f0->$f1"
  # ensure_path's create of /metrics-test (the first run) may add one create
  run "$ZN_PYTHON" -c "import sys; c0,c1,g0,g1,e0,e1,z0,z1,r0,r1,u0,u1,f0,f1 = map(float, sys.argv[1:])
assert 5 <= c1 - c0 <= 6, 'creates'
assert g1 - g0 == 6, 'getData: 5 found + 1 missing'
assert e1 - e0 == 1, 'one NONODE'
assert 5 <= z1 - z0 <= 6, 'znodes'
assert r1 - r0 >= 6, 'readlatency counts reads'
assert u1 - u0 >= 5, 'updatelatency counts writes'
assert f1 - f0 >= 1, 'fsynctime counts the log commits that made them durable'
" "$c0" "$c1" "$g0" "$g1" "$e0" "$e1" "$z0" "$z1" "$r0" "$r1" "$u0" "$u1" "$f0" "$f1"
  assert_success
  # the histogram is consistent: the +Inf bucket holds every create, and the count agrees
  inf="$(value "$after" 'znodefs_request_latency_seconds_bucket{le="+Inf",op="create"}')"
  cnt="$(value "$after" 'znodefs_request_latency_seconds_count{op="create"}')"
  [ "$inf" = "$c1" ] && [ "$cnt" = "$c1" ] || { echo "+Inf=$inf count=$cnt total=$c1"; false; }
  run normalized "$after"
  assert_output --partial 'readlatency{quantile="0.99"} '
  assert_output --partial 'znodefs_request_latency_seconds_sum{op="create"} '
}

@test "HEAD has no body, other paths are 404 and other methods 405" {
  run curl -sS -I "$METRICS_URL/metrics"
  assert_success
  assert_line --partial "HTTP/1.1 200"
  run curl -sS -o /dev/null -w '%{http_code} %{size_download}' --head "$METRICS_URL/metrics"
  assert_output "200 0"
  run curl -sS -o /dev/null -w '%{http_code}' "$METRICS_URL/nope"
  assert_output 404
  run curl -sS -o /dev/null -w '%{http_code}' -X POST -d x "$METRICS_URL/metrics"
  assert_output 405
  # a client that connects and says nothing does not stop others from scraping
  exec 7<>"/dev/tcp/127.0.0.1/$(cat "$ZN_STATE_DIR/metrics_port")"
  run curl -sS -f --max-time 5 -o /dev/null "$METRICS_URL/metrics"
  exec 7>&-
  assert_success
}

@test "the metrics port does not disturb the client port" {
  run fourlw ruok
  assert_output imok
  run fourlw mntr
  assert_output --partial "zk_znode_count"
}
