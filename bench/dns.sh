#!/usr/bin/env bash
# bench/dns.sh: Warden's DNS filter under load, beside a C resolver doing
# the same forward-and-cache job.
#
# What it does, all on 127.0.0.1 and inside one temporary folder that is
# removed on exit (with every process the script started):
#   - installs dnsperf and unbound from Debian if they are missing;
#   - builds warden and bench/gendomains;
#   - makes a data folder: `warden init --demo` (the CLI cannot create
#     zones yet; the demo's zone this-computer puts 127.0.0.0/8 in the
#     group key-stage-2, category filtering), the UT1 lists from the shared
#     data (../shared/data or $WARDEN_SHARED_DATA) and a generated plain
#     list (malware-hacking), 1,000,000 distinct domains in all;
#   - a query file of 100,000 distinct names, half listed (blocked for the
#     client), half in no list, shuffled deterministically;
#   - starts a fake upstream (unbound, local-zone "." redirect: every name
#     is 192.0.2.1), a reference forwarder (unbound, cache on, forwarding
#     "." to the fake upstream) and Warden twice, with the query log on and
#     off (dns.no_query_log), both forwarding to the fake upstream;
#   - runs dnsperf against each: one pass through the query file with an
#     empty cache, then two rounds of a 30 s run and a latency run at a
#     fixed offered rate of 2,000 q/s; reads CPU time and RSS from /proc;
#   - prints a report with the medians of the two rounds, the ratios
#     Warden/unbound and the targets, marked PASS or MISS.
#
# Usage: bench/dns.sh [--quick] [--keep]
#   --quick  5 s runs instead of 30 s (latency 5 s instead of 15 s)
#   --keep   keep the work folder (logs, configuration, dnsperf output)
# Environment: WARDEN_SHARED_DATA (the shared data folder),
#   DNSPERF_CLIENTS (default 4) and DNSPERF_OUTSTANDING (default 128).
# It exits 0 once the report is printed, whether or not targets are met.
# A full run takes about 6 minutes and, with Warden's access log on, writes
# some 25 bytes per query (about 0.2 GB) into the work folder.
set -euo pipefail

prog=bench/dns.sh
quick=0
keep=0
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    --keep) keep=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "$prog: unknown option $arg (use --quick, --keep or --help)" >&2
      exit 2
      ;;
  esac
done

if [ "$quick" = 1 ]; then
  duration=5 lat_duration=5
else
  duration=30 lat_duration=15
fi
rounds=2
rate=2000
clients=${DNSPERF_CLIENTS:-4}
outstanding=${DNSPERF_OUTSTANDING:-128}
total_domains=1000000
nqueries=100000
block_addr=127.0.0.1 # Warden answers blocked names with the web listener's address
fake_addr=192.0.2.1  # the fake upstream's answer to every name

say() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() {
  echo "$prog: $*" >&2
  exit 1
}

# --- where things are -------------------------------------------------------

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
if [ ! -f go.mod ] || [ ! -d cmd/warden ]; then
  die "cannot find the repository root (looked in $root)"
fi
shared=${WARDEN_SHARED_DATA:-$root/../shared/data}
ut1=$shared/categories/ut1
tranco=$shared/topsites/tranco_top_100k.csv.gz
export PATH=$PATH:/usr/sbin:/sbin:/usr/local/go/bin

# --- tools -------------------------------------------------------------------

missing=()
command -v dnsperf >/dev/null 2>&1 || missing+=(dnsperf)
command -v unbound >/dev/null 2>&1 || missing+=(unbound)
command -v dig >/dev/null 2>&1 || missing+=(bind9-dnsutils)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    die "missing ${missing[*]}: install them (Debian: apt-get install ${missing[*]}) and run again"
  fi
  say "installing ${missing[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    die "apt-get install ${missing[*]} failed"
fi
for t in go dnsperf unbound unbound-checkconf dig getconf awk sort; do
  command -v "$t" >/dev/null 2>&1 || die "$t not found"
done

# --- the work folder and clean-up ----------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/warden-dnsbench.XXXXXX")
pids=()
cleanup() {
  local pid _
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$keep" = 1 ]; then
    echo "$prog: work folder kept: $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
free_kib=$(df -Pk "$work" | awk 'NR == 2 { print $4 }')
if [ "${free_kib:-0}" -lt $((2 * 1024 * 1024)) ]; then
  say "warning: less than 2 GiB free in $work; Warden's access log may fill it (set TMPDIR elsewhere)"
fi

# fg_run CMD...: run CMD in the background and wait for it, so that a
# signal reaches the trap at once (the clean-up then stops CMD too).
fg_run() {
  local p rc=0
  "$@" &
  p=$!
  pids+=("$p")
  wait "$p" || rc=$?
  unset 'pids[-1]'
  return "$rc"
}

# port_free PORT: nothing listens on PORT (TCP or UDP, IPv4 or IPv6).
port_free() {
  local hex files=() f
  hex=$(printf ':%04X' "$1")
  for f in /proc/net/tcp /proc/net/udp /proc/net/tcp6 /proc/net/udp6; do
    [ -r "$f" ] && files+=("$f")
  done
  ! awk -v h="$hex" 'FNR > 1 && substr($2, length($2) - 4) == h { found = 1 } END { exit !found }' "${files[@]}"
}
next_port=$((20000 + RANDOM % 30000))
# new_port VAR: set VAR to a free port not handed out before.
new_port() {
  while ! port_free "$next_port"; do
    next_port=$((next_port + 1))
  done
  printf -v "$1" %d "$next_port"
  next_port=$((next_port + 1))
}

# Process figures from /proc.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; } # utime + stime
clk_tck=$(getconf CLK_TCK)

# alive NAME PID LOG: die with the log's end if the process has exited.
alive() {
  kill -0 "$2" 2>/dev/null && return 0
  echo "$prog: $1 (pid $2) has exited; the end of its log:" >&2
  tail -n 20 "$3" >&2 || true
  exit 1
}

# --- build ------------------------------------------------------------------

load_start=$(cut -d" " -f1-3 /proc/loadavg)
say "building warden and bench/gendomains into $work"
go build -o "$work/warden" ./cmd/warden || die "go build ./cmd/warden failed"
go build -o "$work/gendomains" ./bench/gendomains || die "go build ./bench/gendomains failed"
W=$work/warden

# --- data -------------------------------------------------------------------

data=$work/data
say "creating the data folder (warden init --demo)"
"$W" init --demo --data "$data" >"$work/init.log" 2>&1 || {
  cat "$work/init.log" >&2
  die "warden init failed"
}
if [ -d "$ut1" ]; then
  say "importing the UT1 lists from $ut1"
  "$W" lists import --data "$data" --format ut1 "$ut1" >"$work/import-ut1.log" 2>&1 || {
    tail -n 20 "$work/import-ut1.log" >&2
    die "warden lists import --format ut1 failed"
  }
  data_source="UT1 lists from $ut1"
else
  say "no UT1 lists at $ut1 (set WARDEN_SHARED_DATA): generating all names instead"
  data_source="no shared data found at $shared: the demo's starter lists only"
fi
[ -f "$tranco" ] || tranco=

# Every entry Warden holds, and those of the lists blocked or allowed for
# the client. The demo's key-stage-2 group takes the taxonomy's starting
# actions for pupils, which `warden lists categories` prints.
"$W" lists categories --data "$data" | awk 'NR > 1 && NF == 0 { exit } NR > 1 { print $1, $3 }' >"$work/category-actions.txt"
"$W" lists show --data "$data" |
  awk 'NR > 1 { c = ""; for (i = 2; i <= NF && $i !~ /^[0-9]+$/; i++) c = c " " $i; print $1 c }' >"$work/list-categories.txt"
awk 'NR == FNR { act[$1] = $2; next }
     { b = 1; for (i = 2; i <= NF; i++) if (act[$i] != "block") b = 0; print $1, (b ? "blocked" : "allowed") }' \
  "$work/category-actions.txt" "$work/list-categories.txt" >"$work/list-classes.txt"
: >"$work/blocked.txt"
: >"$work/allowed.txt"
: >"$work/all.txt"
while read -r id class; do
  "$W" lists show --data "$data" "$id" >>"$work/$class.txt" || die "warden lists show $id failed"
done <"$work/list-classes.txt"
cat "$work/blocked.txt" "$work/allowed.txt" >"$work/all.txt"

say "generating names up to $total_domains domains and the query file"
gen=$work/gen
"$work/gendomains" -existing "$work/all.txt" -blocked "$work/blocked.txt" -allowed "$work/allowed.txt" \
  ${tranco:+-topsites "$tranco"} -total "$total_domains" -queries "$nqueries" -out "$gen" >"$work/gendomains.txt" ||
  die "bench/gendomains failed"
if [ -s "$gen/generated.txt" ]; then
  "$W" lists import --data "$data" --format plain --category malware-hacking --name local/generated \
    "$gen/generated.txt" >"$work/import-generated.log" 2>&1 || {
    tail -n 20 "$work/import-generated.log" >&2
    die "warden lists import of the generated list failed"
  }
fi
probe=$(head -n 1 "$gen/probe.txt")
queries=$gen/queries.txt
cp -a "$data" "$work/data-nolog" # the second Warden gets its own copy

# --- servers ------------------------------------------------------------------

up_port='' ref_port='' on_port='' on_http='' off_port='' off_http=''
for v in up_port ref_port on_port on_http off_port off_http; do
  new_port "$v"
done

cat >"$work/upstream.conf" <<EOF
# The fake upstream: answers every name with $fake_addr.
server:
    interface: 127.0.0.1
    port: $up_port
    do-ip6: no
    chroot: ""
    username: ""
    directory: "$work"
    pidfile: "$work/upstream.pid"
    use-syslog: no
    logfile: "$work/upstream.log"
    verbosity: 0
    num-threads: 1
    module-config: "iterator"
    access-control: 127.0.0.0/8 allow
    local-zone: "." redirect
    local-data: ". 3600 IN A $fake_addr"
remote-control:
    control-enable: no
EOF
cat >"$work/reference.conf" <<EOF
# The reference: a caching forwarder to the fake upstream, no list.
server:
    interface: 127.0.0.1
    port: $ref_port
    do-ip6: no
    chroot: ""
    username: ""
    directory: "$work"
    pidfile: "$work/reference.pid"
    use-syslog: no
    logfile: "$work/reference.log"
    verbosity: 0
    num-threads: 2
    module-config: "iterator"
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    msg-cache-size: 64m
    rrset-cache-size: 128m
    num-queries-per-thread: 4096
    outgoing-range: 8192
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@$up_port
remote-control:
    control-enable: no
EOF
printf 'dns:\n  rate_limit: -1\n  no_query_log: false\nlog:\n  level: info\n' >"$work/warden-log-on.yaml"
printf 'dns:\n  rate_limit: -1\n  no_query_log: true\nlog:\n  level: info\n' >"$work/warden-log-off.yaml"
for c in upstream reference; do
  unbound-checkconf "$work/$c.conf" >"$work/$c.checkconf" 2>&1 || {
    cat "$work/$c.checkconf" >&2
    die "unbound-checkconf rejected the $c configuration"
  }
done

# wait_answer PORT NAME WANT PID LOG WHAT: poll until NAME resolves to WANT.
wait_answer() {
  local _
  for _ in $(seq 600); do
    alive "$6" "$4" "$5"
    if [ "$(dig +short +tries=1 +timeout=1 @127.0.0.1 -p "$1" "$2" A 2>/dev/null | tail -n 1)" = "$3" ]; then
      return 0
    fi
    sleep 0.1
  done
  die "$6 on port $1 did not answer $2 with $3 within 60 s"
}

say "starting the fake upstream (unbound) on 127.0.0.1:$up_port"
unbound -d -c "$work/upstream.conf" >"$work/upstream.out" 2>&1 &
up_pid=$!
pids+=("$up_pid")
wait_answer "$up_port" example.org "$fake_addr" "$up_pid" "$work/upstream.log" "the fake upstream"

say "starting the reference forwarder (unbound) on 127.0.0.1:$ref_port"
unbound -d -c "$work/reference.conf" >"$work/reference.out" 2>&1 &
ref_pid=$!
pids+=("$ref_pid")
wait_answer "$ref_port" example.org "$fake_addr" "$ref_pid" "$work/reference.log" "the reference forwarder"

# start_warden KEY CONFIG DATA DNSPORT HTTPPORT: start warden serve and time
# it from launch to the first blocked answer.
declare -A pid start_ms rss_load hwm_load
start_warden() {
  local key=$1 t0 t1
  t0=$(date +%s%N)
  "$W" serve --config "$2" --data "$3" --dns-addr "127.0.0.1:$4" --http-addr "127.0.0.1:$5" \
    --upstream "127.0.0.1:$up_port" >"$work/warden-$key.log" 2>&1 &
  pid[$key]=$!
  pids+=("${pid[$key]}")
  local _ ok=0
  for _ in $(seq 6000); do
    alive "Warden ($key)" "${pid[$key]}" "$work/warden-$key.log"
    if [ "$(dig +short +tries=1 +timeout=1 @127.0.0.1 -p "$4" "$probe" A 2>/dev/null | tail -n 1)" = "$block_addr" ]; then
      ok=1
      break
    fi
    sleep 0.01
  done
  [ "$ok" = 1 ] || die "Warden ($key) did not block $probe within 60 s; see its log"
  t1=$(date +%s%N)
  start_ms[$key]=$(((t1 - t0) / 1000000))
  sleep 2
  rss_load[$key]=$(rss_kib "${pid[$key]}")
  hwm_load[$key]=$(hwm_kib "${pid[$key]}")
}

say "starting Warden with the query log on, DNS on 127.0.0.1:$on_port"
start_warden on "$work/warden-log-on.yaml" "$data" "$on_port" "$on_http"
say "starting Warden with the query log off, DNS on 127.0.0.1:$off_port"
start_warden off "$work/warden-log-off.yaml" "$work/data-nolog" "$off_port" "$off_http"
pid[ref]=$ref_pid
rss_load[ref]=$(rss_kib "$ref_pid")
hwm_load[ref]=$(hwm_kib "$ref_pid")
domains=$(grep -o 'msg=policy_loaded.*' "$work/warden-on.log" | tail -n 1 | grep -o 'domains=[0-9]*' | cut -d= -f2 || true)
load_ms=$(grep -o 'msg=policy_loaded.*' "$work/warden-on.log" | tail -n 1 | grep -o 'took_ms=[0-9]*' | cut -d= -f2 || true)

# check PORT: ask for the first 2,000 query names one by one and compare
# with what gendomains expects; prints "ok wrong unanswered".
check() {
  awk '{ print $1, "A" }' "$gen/expect.txt" |
    dig @127.0.0.1 -p "$1" +noall +answer +tries=2 +timeout=2 -f /dev/stdin 2>/dev/null >"$work/check-$1.txt" || true
  awk -v block="$block_addr" -v ref="$2" 'NR == FNR { want[$1 "."] = $2; next }
    ($1 in want) && $4 == "A" { got[$1] = ($5 == block) ? "blocked" : "allowed" }
    ($1 in want) && $4 == "CNAME" && !($1 in got) { got[$1] = "allowed" }
    END {
      for (n in want) {
        w = ref ? "allowed" : want[n]
        if (!(n in got)) miss++; else if (got[n] == w) ok++; else bad++
      }
      print ok + 0, bad + 0, miss + 0
    }' "$gen/expect.txt" "$work/check-$1.txt"
}
# --- load -----------------------------------------------------------------------

declare -A port=([on]=$on_port [off]=$off_port [ref]=$ref_port)
declare -A label=([on]="Warden (query log on)" [off]="Warden (query log off)" [ref]="unbound forwarder")
declare -A log=([on]="$work/warden-on.log" [off]="$work/warden-off.log" [ref]="$work/reference.log")
declare -A qps cpu_us lost servfail p50 p99 avg written
targets=(on off ref)
declare -A answered
for k in "${targets[@]}"; do
  lost[$k]=0
  answered[$k]=0
  servfail[$k]=0
done

# disk_bytes KEY: size of what the server writes (data folder and log).
disk_bytes() {
  case $1 in
    on) du -sb "$data" "$work/warden-on.log" | awk '{ s += $1 } END { print s }' ;;
    off) du -sb "$work/data-nolog" "$work/warden-off.log" | awk '{ s += $1 } END { print s }' ;;
    ref) du -sb "$work/reference.log" | awk '{ print $1 }' ;;
  esac
}

# field OUT PATTERN N: field N of the dnsperf output line matching PATTERN.
field() { awk -v p="$2" -v n="$3" 'index($0, p) { print $n; exit }' "$1"; }

# account KEY OUT: add the run's answered and lost queries and SERVFAIL
# answers.
account() {
  local l s c
  l=$(field "$2" "Queries lost:" 3)
  c=$(field "$2" "Queries completed:" 3)
  s=$(grep -o 'SERVFAIL [0-9]*' "$2" | awk '{ print $2 }' || true)
  lost[$1]=$((lost[$1] + ${l:-0}))
  answered[$1]=$((answered[$1] + ${c:-0}))
  servfail[$1]=$((servfail[$1] + ${s:-0}))
}

# throughput KEY ROUND
declare -A rss_busy
throughput() {
  local k=$1 r=$2 out c0 c1 d0 d1 done_q q
  out=$work/dnsperf-$k-$r.txt
  alive "${label[$k]}" "${pid[$k]}" "${log[$k]}"
  c0=$(cpu_ticks "${pid[$k]}")
  d0=$(disk_bytes "$k")
  fg_run dnsperf -s 127.0.0.1 -p "${port[$k]}" -d "$queries" -l "$duration" -c "$clients" -q "$outstanding" >"$out" 2>&1 || {
    tail -n 20 "$out" >&2
    die "dnsperf against ${label[$k]} failed"
  }
  alive "${label[$k]}" "${pid[$k]}" "${log[$k]}"
  c1=$(cpu_ticks "${pid[$k]}")
  d1=$(disk_bytes "$k")
  local rss
  rss=$(rss_kib "${pid[$k]}")
  [ "$rss" -le "${rss_busy[$k]:-0}" ] || rss_busy[$k]=$rss
  done_q=$(field "$out" "Queries completed:" 3)
  q=$(field "$out" "Queries per second:" 4)
  [ -n "$q" ] || die "could not read dnsperf's output ($out)"
  [ -n "$done_q" ] || die "could not read dnsperf's output ($out)"
  qps[$k]="${qps[$k]:-} $q"
  cpu_us[$k]="${cpu_us[$k]:-} $(awk -v t="$((c1 - c0))" -v hz="$clk_tck" -v n="$done_q" 'BEGIN { printf "%.2f", n ? t / hz / n * 1e6 : 0 }')"
  written[$k]="${written[$k]:-} $(awk -v b="$((d1 - d0))" -v n="$done_q" 'BEGIN { printf "%.2f", n ? b / n : 0 }')"
  account "$k" "$out"
  say "  ${label[$k]}: $(printf '%.0f' "$q") q/s, lost $(field "$out" "Queries lost:" 3)"
}

# latency KEY ROUND: per-query latencies at a fixed offered rate.
latency() {
  local k=$1 r=$2 out
  out=$work/latency-$k-$r.txt
  alive "${label[$k]}" "${pid[$k]}" "${log[$k]}"
  fg_run dnsperf -s 127.0.0.1 -p "${port[$k]}" -d "$queries" -l "$lat_duration" -Q "$rate" -c "$clients" -q "$outstanding" -v >"$out" 2>&1 || {
    tail -n 20 "$out" >&2
    die "dnsperf -Q $rate against ${label[$k]} failed"
  }
  awk '$1 == ">" && NF >= 5 && $NF ~ /^[0-9.]+$/ { print $NF }' "$out" | sort -g >"$out.sorted"
  [ -s "$out.sorted" ] || die "no per-query latencies in dnsperf -v output ($out)"
  local n a b
  n=$(wc -l <"$out.sorted")
  a=$(awk -v n="$n" 'BEGIN { i = int(n * 0.50); if (i < n * 0.50) i++; print (i < 1 ? 1 : i) }')
  b=$(awk -v n="$n" 'BEGIN { i = int(n * 0.99); if (i < n * 0.99) i++; print (i < 1 ? 1 : i) }')
  p50[$k]="${p50[$k]:-} $(sed -n "${a}p" "$out.sorted" | awk '{ printf "%.3f", $1 * 1000 }')"
  p99[$k]="${p99[$k]:-} $(sed -n "${b}p" "$out.sorted" | awk '{ printf "%.3f", $1 * 1000 }')"
  avg[$k]="${avg[$k]:-} $(field "$out" "Average Latency (s):" 4 | awk '{ printf "%.3f", $1 * 1000 }')"
  account "$k" "$out"
}

# cold KEY: one pass through the query file with an empty cache (half the
# names go to the upstream); measured, and it warms the cache so that the
# rounds measure the steady state.
declare -A qps_cold
cold() {
  local k=$1 out
  out=$work/dnsperf-$k-cold.txt
  alive "${label[$k]}" "${pid[$k]}" "${log[$k]}"
  fg_run dnsperf -s 127.0.0.1 -p "${port[$k]}" -d "$queries" -n 1 -c "$clients" -q "$outstanding" >"$out" 2>&1 || {
    tail -n 20 "$out" >&2
    die "dnsperf (first pass) against ${label[$k]} failed"
  }
  qps_cold[$k]=$(field "$out" "Queries per second:" 4)
  account "$k" "$out"
  say "  ${label[$k]}: $(printf '%.0f' "${qps_cold[$k]}") q/s, lost $(field "$out" "Queries lost:" 3)"
}
say "first pass through the query file, cold cache (dnsperf -n 1 -c $clients -q $outstanding)"
for k in "${targets[@]}"; do cold "$k"; done

say "checking 2,000 query names against each server"
declare -A checked
checked[on]=$(check "$on_port" 0)
checked[off]=$(check "$off_port" 0)
checked[ref]=$(check "$ref_port" 1)

for r in $(seq "$rounds"); do
  say "round $r of $rounds: dnsperf -l $duration -c $clients -q $outstanding against each server"
  for k in "${targets[@]}"; do throughput "$k" "$r"; done
  say "round $r of $rounds: latency at $rate q/s for $lat_duration s"
  for k in "${targets[@]}"; do latency "$k" "$r"; done
done
declare -A rss_runs hwm_runs
for k in "${targets[@]}"; do
  alive "${label[$k]}" "${pid[$k]}" "${log[$k]}"
  rss_runs[$k]=$(rss_kib "${pid[$k]}")
  hwm_runs[$k]=$(hwm_kib "${pid[$k]}")
done

# metric KEY NAME: the sum of a Prometheus metric's samples on Warden's
# /metrics, or "-" when it is not there.
declare -A http=([on]=$on_http [off]=$off_http)
metric() {
  command -v curl >/dev/null 2>&1 || {
    echo -
    return
  }
  local out
  out=$(curl -s --max-time 5 "http://127.0.0.1:${http[$1]}/metrics" 2>/dev/null) || out=
  echo "$out" | awk -v m="$2" '$1 == m || index($1, m "{") == 1 { s += $NF; f = 1 } END { if (f) printf "%.0f", s; else print "-" }'
}
declare -A ev_written ev_dropped ev_queued
for k in on off; do
  ev_written[$k]=$(metric "$k" warden_events_written_total)
  ev_dropped[$k]=$(metric "$k" warden_events_dropped_total)
  ev_queued[$k]=$(metric "$k" warden_events_queued)
done

# --- report -----------------------------------------------------------------------

median() { echo "$*" | tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
fmt() { awk -v v="$1" -v d="${2:-0}" 'BEGIN { if (v == "") print "-"; else printf "%.*f", d, v }'; }
mib() { awk -v v="$1" 'BEGIN { printf "%.1f", v / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2fx", a / b }'; }
# runs "A B": the single runs, "A/B", rounded.
runs() { echo "$1" | awk '{ for (i = 1; i <= NF; i++) printf "%s%.0f", (i > 1 ? "/" : ""), $i }'; }
mark() { if awk -v v="$1" "BEGIN { exit !($2) }"; then echo PASS; else echo MISS; fi; }

declare -A m_qps m_cpu m_p50 m_p99 m_avg m_written
for k in "${targets[@]}"; do
  m_qps[$k]=$(median "${qps[$k]}")
  m_cpu[$k]=$(median "${cpu_us[$k]}")
  m_p50[$k]=$(median "${p50[$k]}")
  m_p99[$k]=$(median "${p99[$k]}")
  m_avg[$k]=$(median "${avg[$k]}")
  m_written[$k]=$(median "${written[$k]}")
done

row() { printf '%-36s %12s %12s %12s %9s  %-26s %s\n' "$@"; }
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
os=$(uname -s)
if [ -r /etc/os-release ]; then
  os=$(awk -F= '$1 == "PRETTY_NAME" { gsub(/"/, "", $2); print $2 }' /etc/os-release)
fi
rev=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)
unbound_version=$(unbound -V 2>/dev/null | awk '/^Version/ { print $2; exit }')
dnsperf_version=$(dnsperf -h 2>&1 | awk '/^Version/ { print $2; exit }')
read -r gen_summary <"$work/gendomains.txt" || true
mode="full run"
[ "$quick" = 1 ] && mode="quick run (--quick)"

echo
echo "Warden DNS benchmark (bench/dns.sh), $mode, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine:   $(nproc) cores${cpu_model:+ ($cpu_model)}, $os, Linux $(uname -r)"
echo "           load average (1, 5, 15 min) when the script started: $load_start (other work on the machine skews the figures)"
echo "software:  warden $rev, $(go version | awk '{ print $3 }'), dnsperf $dnsperf_version, unbound $unbound_version"
echo "data:      $data_source; $gen_summary"
echo "           Warden's count: ${domains:-?} distinct domains, policy loaded in ${load_ms:-?} ms (its log)"
echo "client:    127.0.0.1, in the demo's zone this-computer -> group key-stage-2 (category filtering);"
echo "           the CLI cannot create zones yet, so the data folder starts from warden init --demo"
sed -n '2,$p' "$work/gendomains.txt" | sed 's/^/           /'
echo "check:     first 2,000 query names asked one by one (ok / wrong / unanswered):"
echo "           Warden log on ${checked[on]// / \/ }, Warden log off ${checked[off]// / \/ }, unbound ${checked[ref]// / \/ } (unbound: all answered $fake_addr)"
echo "upstream:  unbound 127.0.0.1:$up_port, local-zone \".\" redirect, local-data \". 3600 IN A $fake_addr\", num-threads 1"
echo "reference: unbound 127.0.0.1:$ref_port, forward-zone \".\" -> 127.0.0.1@$up_port, cache on (msg-cache 64m, rrset-cache 128m),"
echo "           num-threads 2, module-config iterator (no DNSSEC validation), num-queries-per-thread 4096, outgoing-range 8192"
echo "Warden:    warden serve --dns-addr 127.0.0.1:PORT --http-addr 127.0.0.1:PORT --upstream 127.0.0.1:$up_port,"
echo "           config dns: {rate_limit: -1, no_query_log: false | true}, log level info to a file; blocked = A $block_addr"
echo "load:      first one pass through the query file with an empty cache (dnsperf -n 1), which warms the cache;"
echo "           then dnsperf -l $duration -c $clients -q $outstanding (UDP, one send/receive thread pair), the query file looped;"
echo "           $rounds rounds of [Warden log on, Warden log off, unbound]; figures are medians of the rounds"
echo "latency:   dnsperf -Q $rate -l $lat_duration -c $clients -q $outstanding -v: p50/p99 from its per-query latencies (nearest rank)"
echo "CPU:       utime+stime of the server process from /proc/PID/stat (CLK_TCK $clk_tck) over a run / queries completed"
echo "RSS:       VmRSS from /proc/PID/status, 2 s after the first blocked answer, at the end of each full-speed run,"
echo "           and after all runs (Warden hands memory back once it has been quiet for 5 s)"
echo
row "" "Warden" "Warden" "unbound" "Warden/" "target" ""
row "" "log on" "log off" "forwarder" "unbound" "" ""
on_qps=${m_qps[on]} off_qps=${m_qps[off]} ref_qps=${m_qps[ref]}
qps_ratio=$(awk -v a="$on_qps" -v b="$ref_qps" 'BEGIN { print (b > 0) ? a / b : 0 }')
row "queries/s, warm cache" "$(fmt "$on_qps")" "$(fmt "$off_qps")" "$(fmt "$ref_qps")" "$(ratio "$on_qps" "$ref_qps")" \
  ">= 1.0x unbound" "$(mark "$qps_ratio" "v >= 1.0")"
row "  runs" "$(runs "${qps[on]}")" \
  "$(runs "${qps[off]}")" \
  "$(runs "${qps[ref]}")" "" "" ""
row "queries/s, first pass, cold cache" "$(fmt "${qps_cold[on]}")" "$(fmt "${qps_cold[off]}")" "$(fmt "${qps_cold[ref]}")" \
  "$(ratio "${qps_cold[on]}" "${qps_cold[ref]}")" "" ""
row "server CPU per query (us)" "$(fmt "${m_cpu[on]}" 1)" "$(fmt "${m_cpu[off]}" 1)" "$(fmt "${m_cpu[ref]}" 1)" \
  "$(ratio "${m_cpu[on]}" "${m_cpu[ref]}")" "<= 60 us" "$(mark "${m_cpu[on]}" "v <= 60")"
row "latency p50 at $rate q/s (ms)" "$(fmt "${m_p50[on]}" 3)" "$(fmt "${m_p50[off]}" 3)" "$(fmt "${m_p50[ref]}" 3)" \
  "$(ratio "${m_p50[on]}" "${m_p50[ref]}")" "" ""
row "latency p99 at $rate q/s (ms)" "$(fmt "${m_p99[on]}" 3)" "$(fmt "${m_p99[off]}" 3)" "$(fmt "${m_p99[ref]}" 3)" \
  "$(ratio "${m_p99[on]}" "${m_p99[ref]}")" "<= 2 ms" "$(mark "${m_p99[on]}" "v <= 2")"
row "latency average at $rate q/s (ms)" "$(fmt "${m_avg[on]}" 3)" "$(fmt "${m_avg[off]}" 3)" "$(fmt "${m_avg[ref]}" 3)" \
  "$(ratio "${m_avg[on]}" "${m_avg[ref]}")" "" ""
row "RSS after load (MiB)" "$(mib "${rss_load[on]}")" "$(mib "${rss_load[off]}")" "$(mib "${rss_load[ref]}")" \
  "$(ratio "${rss_load[on]}" "${rss_load[ref]}")" "<= 60 MiB (1 M domains)" "$(mark "${rss_load[on]}" "v <= 60 * 1024")"
growth=$(awk -v a="${rss_runs[on]}" -v b="${rss_load[on]}" 'BEGIN { printf "%.0f", (a / b - 1) * 100 }')
row "RSS after the runs (MiB)" "$(mib "${rss_runs[on]}")" "$(mib "${rss_runs[off]}")" "$(mib "${rss_runs[ref]}")" \
  "$(ratio "${rss_runs[on]}" "${rss_runs[ref]}")" "<= +30% (now ${growth}%)" "$(mark "$growth" "v <= 30")"
row "RSS at the end of a run, most (MiB)" "$(mib "${rss_busy[on]}")" "$(mib "${rss_busy[off]}")" "$(mib "${rss_busy[ref]}")" \
  "$(ratio "${rss_busy[on]}" "${rss_busy[ref]}")" "" ""
row "peak RSS while loading, VmHWM (MiB)" "$(mib "${hwm_load[on]}")" "$(mib "${hwm_load[off]}")" "$(mib "${hwm_load[ref]}")" \
  "$(ratio "${hwm_load[on]}" "${hwm_load[ref]}")" "" ""
row "peak RSS after the runs, VmHWM (MiB)" "$(mib "${hwm_runs[on]}")" "$(mib "${hwm_runs[off]}")" "$(mib "${hwm_runs[ref]}")" \
  "$(ratio "${hwm_runs[on]}" "${hwm_runs[ref]}")" "" ""
row "start to first blocked answer (ms)" "${start_ms[on]}" "${start_ms[off]}" "-" "" "<= 1000 ms (1 M domains)" \
  "$(mark "${start_ms[on]}" "v <= 1000")"
row "queries lost (all runs)" "${lost[on]}" "${lost[off]}" "${lost[ref]}" "" "0" "$(mark "${lost[on]}" "v == 0")"
row "queries answered (all runs)" "${answered[on]}" "${answered[off]}" "${answered[ref]}" "" "" ""
row "query log events written (/metrics)" "${ev_written[on]}" "${ev_written[off]}" "" "" "" ""
row "query log events dropped (/metrics)" "${ev_dropped[on]}" "${ev_dropped[off]}" "" "" "" ""
row "query log events queued at the end" "${ev_queued[on]}" "${ev_queued[off]}" "" "" "" ""
row "SERVFAIL answers (all runs)" "${servfail[on]}" "${servfail[off]}" "${servfail[ref]}" "" "" ""
cost=$(awk -v on="$on_qps" -v off="$off_qps" 'BEGIN { printf "%.1f", (off > 0) ? (1 - on / off) * 100 : 0 }')
row "cost of the query log (% of q/s)" "$cost" "" "" "" "<= 10%" "$(mark "$cost" "v <= 10")"
row "written to disk per query (bytes)" "$(fmt "${m_written[on]}" 1)" "$(fmt "${m_written[off]}" 1)" "$(fmt "${m_written[ref]}" 1)" "" "" ""
echo
met=0 missed=()
for m in "queries/s:$(mark "$qps_ratio" "v >= 1.0")" "CPU per query:$(mark "${m_cpu[on]}" "v <= 60")" \
  "p99 latency:$(mark "${m_p99[on]}" "v <= 2")" "RSS after load:$(mark "${rss_load[on]}" "v <= 60 * 1024")" \
  "RSS growth:$(mark "$growth" "v <= 30")" "start to first block:$(mark "${start_ms[on]}" "v <= 1000")" \
  "no query lost:$(mark "${lost[on]}" "v == 0")" "query log cost:$(mark "$cost" "v <= 10")"; do
  if [ "${m##*:}" = PASS ]; then met=$((met + 1)); else missed+=("${m%:*}"); fi
done
missed_text=
for m in "${missed[@]}"; do missed_text="${missed_text:+$missed_text, }$m"; done
echo "Targets met: $met of 8 (Warden with the query log on).${missed_text:+ Missed: $missed_text.}"
if awk -v w="${m_written[on]}" 'BEGIN { exit !(w < 1) }'; then
  echo "Note: with the query log on, Warden wrote less than 1 byte per query to its data folder and log;"
  echo "      if the query log is not written there (or not implemented yet), the cost row measures noise only."
fi
echo "Note: $(nproc) cores are shared by dnsperf, the fake upstream and the server under test: read the ratios"
echo "      rather than the absolute figures."
