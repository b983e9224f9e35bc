#!/usr/bin/env bash
# bench/proxy.sh: Warden's web proxy under load, beside squid doing the
# same forward-and-deny job and beside the origin measured directly.
#
# What it does, all on 127.0.0.1 and inside one temporary folder that is
# removed on exit (with every process the script started):
#   - installs nginx, wrk and squid from Debian if they are missing (and
#     curl and openssl);
#   - builds warden, bench/gendomains and bench/proxyload;
#   - makes a data folder as bench/dns.sh does: `warden init --demo` (the
#     demo's zone this-computer puts 127.0.0.0/8 in the group key-stage-2,
#     category filtering), the UT1 lists from the shared data
#     (../shared/data or $WARDEN_SHARED_DATA) and a generated plain list
#     (malware-hacking), 1,000,000 distinct domains in all;
#   - the origin: nginx (worker_processes auto, access log off, keep-alive
#     without a request limit) serving a 2 KB page and a 100 KB page over
#     HTTP and, with a self-signed certificate made by openssl, HTTPS;
#   - the reference: squid, caching off (cache deny all, no cache_dir,
#     cache_mem 0), its access log on (stdio, as Warden's is), one deny ACL
#     (dstdomain -n) holding the same 1,000,000 domains (".name" covers the
#     subdomains, as Warden's entries do; names under another listed name
#     are left out, as squid rejects overlaps);
#   - Warden: warden serve --proxy-addr --proxy-allow-loopback (DNS off),
#     proxy.connect_ports set to the origin's HTTPS port;
#   - times each proxy from launch to its first proxied answers (the 2 KB
#     page allowed and a listed host blocked), checks what each answers with
#     curl, then measures, at 10 and 50 connections, for the origin directly,
#     Warden and squid: the 2 KB page, the 100 KB page, a blocked host (not
#     for the origin) and the 2 KB page over HTTPS through CONNECT. wrk sends
#     absolute-form requests (its Lua script sets wrk.path to the whole URL
#     and the Host header); bench/proxyload does the CONNECT runs, as wrk
#     cannot tunnel. Each run gives requests/s, p50/p99 latency and server
#     CPU per request (utime+stime from /proc/PID/stat over the run /
#     requests: the proxy's process, or nginx's master and workers for the
#     origin); rounds interleave the servers and figures are their medians;
#   - reads RSS after start-up and after the runs;
#   - a reload check: during a wrk run against Warden, imports a new list
#     with `warden lists import` into its data folder, waits until a name of
#     it is blocked through the proxy, and counts wrk's socket errors and
#     non-2xx answers (both must be 0);
#   - with --soak, a 10-minute wrk run (50 connections, the 2 KB page)
#     against Warden with its RSS read every 30 s, printed as a series;
#   - prints a report with the medians, the ratios Warden/direct and
#     Warden/squid and the targets of issue 4, marked PASS or MISS.
#
# Usage: bench/proxy.sh [--quick] [--keep] [--soak] [--no-warden]
#   --quick      5 s runs instead of 10 s
#   --keep       keep the work folder (logs, configurations, every run's output)
#   --soak       add the 10-minute run against Warden (RSS every 30 s)
#   --no-warden  measure only the origin and squid (to check the set-up)
# Environment: WARDEN_SHARED_DATA (the shared data folder), WRK_THREADS
#   (default 2); for trying the script out, PROXYBENCH_SECONDS (the length
#   of a run, overriding --quick) and PROXYBENCH_SOAK_SECONDS (the soak's,
#   default 600).
# It exits 0 once the report is printed, whether or not targets are met.
# A full run takes about 10 minutes (20 more with --soak). Client, servers
# and origin share the machine's cores: read the ratios rather than the
# absolute figures.
set -Eeuo pipefail

prog=bench/proxy.sh
trap 'echo "$prog: line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
quick=0
keep=0
soak=0
warden=1
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    --keep) keep=1 ;;
    --soak) soak=1 ;;
    --no-warden) warden=0 ;;
    -h | --help)
      sed -n '2,/^set -Eeuo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "$prog: unknown option $arg (use --quick, --keep, --soak, --no-warden or --help)" >&2
      exit 2
      ;;
  esac
done

if [ "$quick" = 1 ]; then
  duration=5 reload_duration=12
else
  duration=10 reload_duration=20
fi
duration=${PROXYBENCH_SECONDS:-$duration}
rounds=2
conn_levels=(10 50)
soak_duration=${PROXYBENCH_SOAK_SECONDS:-600} soak_every=30
threads=${WRK_THREADS:-2}
total_domains=1000000
reload_names=1000

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
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v squid >/dev/null 2>&1 || missing+=(squid)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    die "missing ${missing[*]}: install them (Debian: apt-get install ${missing[*]}) and run again"
  fi
  say "installing ${missing[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed"
  # Debian's packages start their services; nothing here wants them, and
  # a policy-rc.d that refuses keeps them from listening anywhere.
  policy_rc=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    policy_rc=1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
    [ "$policy_rc" = 1 ] && rm -f /usr/sbin/policy-rc.d
    die "apt-get install ${missing[*]} failed"
  }
  [ "$policy_rc" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi
for t in go nginx wrk squid curl openssl getconf awk sort; do
  command -v "$t" >/dev/null 2>&1 || die "$t not found"
done

# --- the work folder and clean-up ----------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/warden-proxybench.XXXXXX")
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
# squid drops root for an unprivileged user, which must be able to read
# its configuration and ACL and write its logs.
chmod 755 "$work"
free_kib=$(df -Pk "$work" | awk 'NR == 2 { print $4 }')
if [ "${free_kib:-0}" -lt $((2 * 1024 * 1024)) ]; then
  say "warning: less than 2 GiB free in $work; Warden's access log may fill it (set TMPDIR elsewhere)"
fi
mkdir -p "$work/runs" "$work/lua"

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

# nap SECONDS: sleep, but let a signal through at once.
nap() { fg_run sleep "$1"; }

# port_free PORT: nothing listens on PORT (TCP or UDP, IPv4 or IPv6).
port_free() {
  local hex files=() f
  hex=$(printf ':%04X' "$1")
  for f in /proc/net/tcp /proc/net/udp /proc/net/tcp6 /proc/net/udp6; do
    [ -r "$f" ] && files+=("$f")
  done
  ! awk -v h="$hex" 'FNR > 1 && substr($2, length($2) - 4) == h { found = 1 } END { exit !found }' "${files[@]}"
}
# Ports come from below the ephemeral range, so that no outgoing
# connection (ours or another program's) takes one between its choice
# and the bind, which for squid comes seconds later.
eph_low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
[ "${eph_low:-0}" -gt 12000 ] || die "the ephemeral port range starts at ${eph_low:-?}: no room below it for the servers' ports"
next_port=$((10000 + RANDOM % (eph_low - 12000)))
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
# cpu_ticks PID...: utime + stime of the processes, summed.
cpu_ticks() {
  local p s=0 t
  for p in "$@"; do
    t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }') || t=0
    s=$((s + ${t:-0}))
  done
  echo "$s"
}
# children PID: the process's children.
children() { cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep . || true; }
clk_tck=$(getconf CLK_TCK)
# busy_ticks: the CPU time processes took, all cores, from /proc/stat
# (user, nice, system: what utime and stime count; interrupts left out).
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4; exit }' /proc/stat; }
# child_ticks: CPU time of this shell's waited-for children (the load
# generators among them), in ticks. `times` must run in this shell, not
# in a subshell, whose children are not these.
child_ticks() {
  times >"$work/times.txt"
  awk -v hz="$clk_tck" 'NR == 2 {
    s = 0
    for (i = 1; i <= 2; i++) { split($i, t, "m"); s += t[1] * 60 + t[2] }
    printf "%.0f", s * hz
  }' "$work/times.txt"
}

# alive NAME PID LOG: die with the log's end if the process has exited.
alive() {
  kill -0 "$2" 2>/dev/null && return 0
  echo "$prog: $1 (pid $2) has exited; the end of its log ($3):" >&2
  tail -n 20 "$3" >&2 || true
  exit 1
}

# --- build ------------------------------------------------------------------

load_start=$(cut -d" " -f1-3 /proc/loadavg)
say "building warden, bench/gendomains and bench/proxyload into $work"
go build -o "$work/warden" ./cmd/warden || die "go build ./cmd/warden failed"
go build -o "$work/gendomains" ./bench/gendomains || die "go build ./bench/gendomains failed"
go build -o "$work/proxyload" ./bench/proxyload || die "go build ./bench/proxyload failed"
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
# the client (as bench/dns.sh works them out).
"$W" lists categories --data "$data" | awk 'NR > 1 && NF == 0 { exit } NR > 1 { print $1, $3 }' >"$work/category-actions.txt"
"$W" lists show --data "$data" |
  awk 'NR > 1 { c = ""; for (i = 2; i <= NF && $i !~ /^[0-9]+$/; i++) c = c " " $i; print $1 c }' >"$work/list-categories.txt"
awk 'NR == FNR { act[$1] = $2; next }
     { b = 1; for (i = 2; i <= NF; i++) if (act[$i] != "block") b = 0; print $1, (b ? "blocked" : "allowed") }' \
  "$work/category-actions.txt" "$work/list-categories.txt" >"$work/list-classes.txt"
: >"$work/blocked.txt"
: >"$work/allowed.txt"
while read -r id class; do
  "$W" lists show --data "$data" "$id" >>"$work/$class.txt" || die "warden lists show $id failed"
done <"$work/list-classes.txt"
cat "$work/blocked.txt" "$work/allowed.txt" >"$work/all.txt"

say "generating names up to $total_domains domains"
gen=$work/gen
"$work/gendomains" -existing "$work/all.txt" -blocked "$work/blocked.txt" -allowed "$work/allowed.txt" \
  ${tranco:+-topsites "$tranco"} -total "$total_domains" -queries 1000 -out "$gen" >"$work/gendomains.txt" ||
  die "bench/gendomains failed"
if [ -s "$gen/generated.txt" ]; then
  "$W" lists import --data "$data" --format plain --category malware-hacking --name local/generated \
    "$gen/generated.txt" >"$work/import-generated.log" 2>&1 || {
    tail -n 20 "$work/import-generated.log" >&2
    die "warden lists import of the generated list failed"
  }
fi
blocked_host=$(head -n 1 "$gen/probe.txt")
[ -n "$blocked_host" ] || die "bench/gendomains gave no blocked name"

# squid's ACL: the same domains, host names as ".name" (the name and its
# subdomains, as Warden matches), addresses as they are; the origin's
# address is left out, and so is every name under another listed name,
# since squid's dstdomain refuses overlaps (with a warning a line).
say "writing squid's ACL"
cat "$work/all.txt" "$gen/generated.txt" |
  awk '{ n = tolower($1); sub(/\.$/, "", n) }
       n == "" || n ~ /\// || n == "127.0.0.1" || n == "localhost" { next }
       { names[n] = 1 }
       END {
         for (n in names) {
           if (n ~ /^[0-9.]+$/ || n ~ /:/) { print n; continue }
           p = n; covered = 0
           while ((i = index(p, ".")) > 0) {
             p = substr(p, i + 1)
             if (p in names) { covered = 1; break }
           }
           if (!covered) print "." n
         }
       }' >"$work/squid-acl.txt"
acl_entries=$(wc -l <"$work/squid-acl.txt")
all_names=$(cat "$work/all.txt" "$gen/generated.txt" | awk '$1 !~ /\//' | sort -u | wc -l)

# The list imported during the reload check: names in no list.
awk -v n="$reload_names" 'BEGIN { for (i = 1; i <= n; i++) printf "reload-%d.proxybench.test\n", i }' >"$work/reload-list.txt"
reload_probe=reload-1.proxybench.test

# --- the origin -------------------------------------------------------------------

nginx_port='' tls_port='' squid_port='' warden_port='' warden_http=''
for v in nginx_port tls_port squid_port warden_port warden_http; do
  new_port "$v"
done
origin=127.0.0.1:$nginx_port
origin_tls=127.0.0.1:$tls_port

ng=$work/nginx
mkdir -p "$ng/html" "$ng/logs" "$ng/tmp"
# page FILE BYTES: an HTML page of exactly BYTES bytes.
page() {
  awk -v n="$2" 'BEGIN {
    head = "<!doctype html>\n<html><head><title>proxy benchmark</title></head><body>\n"
    tail = "</body></html>\n"
    line = "<p>Warden proxy benchmark: an ordinary page of text, served by nginx on loopback.</p>\n"
    s = head
    while (length(s) + length(line) + length(tail) <= n) s = s line
    pad = n - length(s) - length(tail)
    for (i = 0; i < pad; i++) s = s " "
    printf "%s%s", s, tail
  }' >"$1"
  [ "$(wc -c <"$1")" = "$2" ] || die "could not write a $2-byte page"
}
page "$ng/html/2k.html" 2048
page "$ng/html/100k.html" 102400
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
  -keyout "$ng/key.pem" -out "$ng/cert.pem" >"$work/openssl.log" 2>&1 || {
  cat "$work/openssl.log" >&2
  die "openssl could not make the origin's certificate"
}
user_line=
[ "$(id -u)" = 0 ] && user_line="user nobody nogroup;"
cat >"$ng/nginx.conf" <<EOF
# The origin: static pages over HTTP and HTTPS, keep-alive without limit.
$user_line
daemon off;
worker_processes auto;
pid $ng/nginx.pid;
error_log $ng/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $ng/tmp/body;
    proxy_temp_path $ng/tmp/proxy;
    fastcgi_temp_path $ng/tmp/fastcgi;
    uwsgi_temp_path $ng/tmp/uwsgi;
    scgi_temp_path $ng/tmp/scgi;
    types { text/html html; }
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 75s;
    keepalive_requests 100000000;
    server {
        listen 127.0.0.1:$nginx_port;
        listen 127.0.0.1:$tls_port ssl;
        ssl_certificate $ng/cert.pem;
        ssl_certificate_key $ng/key.pem;
        root $ng/html;
    }
}
EOF
nginx -t -p "$ng" -c "$ng/nginx.conf" >"$ng/logs/test.log" 2>&1 || {
  cat "$ng/logs/test.log" >&2
  die "nginx rejected its configuration"
}
say "starting the origin (nginx) on $origin and https://$origin_tls"
nginx -p "$ng" -c "$ng/nginx.conf" >"$ng/logs/out.log" 2>&1 &
nginx_pid=$!
pids+=("$nginx_pid")
ok=0
for _ in $(seq 300); do
  alive nginx "$nginx_pid" "$ng/logs/error.log"
  if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://$origin/2k.html" || true)" = 200 ]; then
    ok=1
    break
  fi
  sleep 0.1
done
[ "$ok" = 1 ] || die "nginx did not answer on $origin within 30 s"

# --- squid -------------------------------------------------------------------------

sq=$work/squid
mkdir -p "$sq"
user_line=
if [ "$(id -u)" = 0 ]; then
  user_line="cache_effective_user nobody"
  chown nobody "$sq"
fi
cat >"$sq/squid.conf" <<EOF
# The reference proxy: no caching, one deny ACL, access log on.
http_port 127.0.0.1:$squid_port
$user_line
visible_hostname proxybench.invalid
pid_filename $sq/squid.pid
cache_log $sq/cache.log
access_log stdio:$sq/access.log
logfile_rotate 0
coredump_dir $sq
netdb_filename none
pinger_enable off
shutdown_lifetime 1 seconds
dns_nameservers 127.0.0.1
cache deny all
cache_mem 0 MB
max_filedescriptors 65536
acl blocked dstdomain -n "$work/squid-acl.txt"
acl origin_tls port $tls_port
http_access deny blocked
http_access deny CONNECT !origin_tls
http_access allow localhost
http_access deny all
EOF

# --- Warden ------------------------------------------------------------------------

cat >"$work/warden.yaml" <<EOF
# Warden for the proxy benchmark: no DNS listener; CONNECT to the origin.
listen:
  dns: ""
proxy:
  connect_ports: [$tls_port]
log:
  level: info
EOF

# wait_proxy NAME PID LOG PORT: poll through the proxy until the 2 KB page
# is answered 200 and the blocked host 403, for up to 120 s.
wait_proxy() {
  local a='' b='' until=$(($(date +%s) + 120))
  while [ "$(date +%s)" -le "$until" ]; do
    alive "$1" "$2" "$3"
    a=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 -x "127.0.0.1:$4" "http://$origin/2k.html" 2>/dev/null || true)
    if [ "$a" = 200 ]; then
      b=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 -x "127.0.0.1:$4" "http://$blocked_host/" 2>/dev/null || true)
      [ "$b" = 403 ] && return 0
    fi
    sleep 0.01
  done
  die "$1 on 127.0.0.1:$4 did not answer the 2 KB page 200 and $blocked_host 403 within 120 s (last: ${a:-none} ${b:-}); see $3"
}

declare -A pid start_ms rss_load hwm_load label log
label=([direct]="origin directly" [warden]="Warden" [squid]="squid")
log=([direct]="$ng/logs/error.log" [warden]="$work/warden.log" [squid]="$sq/cache.log")

say "starting squid on 127.0.0.1:$squid_port with $acl_entries ACL entries"
t0=$(date +%s%N)
squid -N -f "$sq/squid.conf" >"$sq/out.log" 2>&1 &
pid[squid]=$!
pids+=("${pid[squid]}")
wait_proxy squid "${pid[squid]}" "$sq/cache.log" "$squid_port"
start_ms[squid]=$((($(date +%s%N) - t0) / 1000000))

servers=(direct squid)
if [ "$warden" = 1 ]; then
  say "starting Warden with its proxy on 127.0.0.1:$warden_port"
  t0=$(date +%s%N)
  "$W" serve --config "$work/warden.yaml" --data "$data" --http-addr "127.0.0.1:$warden_http" \
    --proxy-addr "127.0.0.1:$warden_port" --proxy-allow-loopback >"$work/warden.log" 2>&1 &
  pid[warden]=$!
  pids+=("${pid[warden]}")
  wait_proxy Warden "${pid[warden]}" "$work/warden.log" "$warden_port"
  start_ms[warden]=$((($(date +%s%N) - t0) / 1000000))
  servers=(direct warden squid)
fi
nap 2
for k in squid warden; do
  [ -n "${pid[$k]:-}" ] || continue
  rss_load[$k]=$(rss_kib "${pid[$k]}")
  hwm_load[$k]=$(hwm_kib "${pid[$k]}")
done
domains=$(grep -o 'msg=policy_loaded.*' "$work/warden.log" 2>/dev/null | tail -n 1 | grep -o 'domains=[0-9]*' | cut -d= -f2 || true)
load_ms=$(grep -o 'msg=policy_loaded.*' "$work/warden.log" 2>/dev/null | tail -n 1 | grep -o 'took_ms=[0-9]*' | cut -d= -f2 || true)

# server_pids KEY: the processes whose CPU a run charges to the server.
server_pids() {
  if [ "$1" = direct ]; then
    echo "$nginx_pid"
    children "$nginx_pid"
  else
    echo "${pid[$1]}"
  fi
}
port_of() { case $1 in warden) echo "$warden_port" ;; squid) echo "$squid_port" ;; esac }

# --- checks ------------------------------------------------------------------------

# check KEY: what a server answers, one request at a time, with curl;
# sets checks[KEY] and fails[KEY] (the checks that must pass).
declare -A checks fails
check() {
  local k=$1 p x out s n reused
  out=$work/check-$k
  fails[$k]=
  if [ "$k" = direct ]; then
    x=()
  else
    p=$(port_of "$k")
    x=(-x "127.0.0.1:$p")
  fi
  # want NAME WANT GOT: note one result.
  want() {
    if [ "$2" = "$3" ]; then
      checks[$k]="${checks[$k]:-}${checks[$k]:+, }$1 ok"
    else
      checks[$k]="${checks[$k]:-}${checks[$k]:+, }$1 $3 (want $2)"
      fails[$k]="${fails[$k]:-}${fails[$k]:+, }$1"
    fi
  }
  s=$(curl -s -o "$out.2k" -w '%{http_code} %{size_download}' --max-time 5 "${x[@]}" "http://$origin/2k.html" 2>/dev/null || true)
  want "2 KB page" "200 2048" "$s"
  s=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' --max-time 5 "${x[@]}" "http://$origin/100k.html" 2>/dev/null || true)
  want "100 KB page" "200 102400" "$s"
  s=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' --max-time 5 --cacert "$ng/cert.pem" "${x[@]}" "https://$origin_tls/2k.html" 2>/dev/null || true)
  want "HTTPS 2 KB page" "200 2048" "$s"
  [ "$k" = direct ] && return 0
  # The blocked host, twice on one connection: 403 both times, the
  # connection kept.
  curl -sv -o /dev/null -o /dev/null --max-time 5 "${x[@]}" "http://$blocked_host/" "http://$blocked_host/a" >"$out.blocked" 2>&1 || true
  n=$(grep -c '^< HTTP/1.1 403' "$out.blocked" || true)
  reused=$(grep -ci 're-using existing connection' "$out.blocked" || true)
  want "blocked host twice on one connection" "403 403, connection kept" "$([ "$n" = 2 ] && echo "403 403" || echo "$n answers 403"), $([ "$reused" -ge 1 ] && echo "connection kept" || echo "connection closed")"
  s=$(curl -s -o /dev/null -w '%{http_connect}' --max-time 5 "${x[@]}" "https://$blocked_host/" 2>/dev/null || true)
  checks[$k]="${checks[$k]}, CONNECT to the blocked host: ${s:-no answer}"
  s=$(curl -s -o /dev/null -w '%{http_connect}' --max-time 5 "${x[@]}" "https://127.0.0.1:9/" 2>/dev/null || true)
  checks[$k]="${checks[$k]}, CONNECT to port 9: ${s:-no answer}"
}
say "checking what each server answers"
for k in "${servers[@]}"; do
  check "$k"
done
for k in "${servers[@]}"; do
  [ -z "${fails[$k]}" ] || die "${label[$k]} failed the checks (${fails[$k]}): ${checks[$k]}; see $work/check-$k.* (use --keep)"
done

# --- load ---------------------------------------------------------------------------

# lua CASE KEY: the wrk script of a case, written once.
lua() {
  local f=$work/lua/$1-$2.lua url path host
  case $1 in
    small) url=http://$origin/2k.html ;;
    big) url=http://$origin/100k.html ;;
    blocked) url=http://$blocked_host/ ;;
  esac
  host=${url#http://}
  host=${host%%/*}
  path=$url                              # absolute form, for a proxy
  [ "$2" = direct ] && path=/${url#http://*/} # origin form
  if [ ! -f "$f" ]; then
    cat >"$f" <<EOF
wrk.path = "$path"
wrk.headers["Host"] = "$host"
done = function(s, l, r)
  local e = s.errors
  io.write(string.format("RESULT requests=%d duration_us=%d bytes=%d p50_us=%.0f p99_us=%.0f mean_us=%.0f connect=%d read=%d write=%d status=%d timeout=%d\n",
    s.requests, s.duration, s.bytes, l:percentile(50), l:percentile(99), l.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
EOF
  fi
  echo "$f"
}

# result OUT FIELD: a field of the RESULT line of a run's output.
result() { awk -v f="$2" '$1 == "RESULT" { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f) print kv[2] } }' "$1"; }

# load_cmd CASE KEY CONNS SECONDS: set cmd to the command of a run.
cmd=()
load_cmd() {
  local c=$1 k=$2 n=$3 d=$4 target=http://$origin/
  [ "$k" = direct ] || target=http://127.0.0.1:$(port_of "$k")/
  if [ "$c" = https ]; then
    if [ "$k" = direct ]; then
      cmd=("$work/proxyload" -direct -c "$n" -d "${d}s" -cacert "$ng/cert.pem" "https://$origin_tls/2k.html")
    else
      cmd=("$work/proxyload" -proxy "127.0.0.1:$(port_of "$k")" -c "$n" -d "${d}s" -cacert "$ng/cert.pem" "https://$origin_tls/2k.html")
    fi
  else
    cmd=(wrk -t "$(((threads < n) ? threads : n))" -c "$n" -d "${d}s" --timeout 2s -s "$(lua "$c" "$k")" "$target")
  fi
}

# disk_bytes KEY: the size of what a proxy writes (Warden: its data
# folder and log; squid: its folder, the access log in it).
disk_bytes() {
  case $1 in
    warden) du -sb "$data" "$work/warden.log" | awk '{ s += $1 } END { print s }' ;;
    squid) du -sb "$sq" | awk '{ print $1 }' ;;
    *) echo 0 ;;
  esac
}

declare -A rps p50 p99 cpu_us sock_err non2xx written resp_bytes
others=() others_max=0 others_max_run=
# measure CASE KEY CONNS ROUND
measure() {
  local c=$1 k=$2 n=$3 r=$4 out key c0 c1 req dur e s ps all b0 b1 o0 o1 h0 h1 w0 w1 other d0 d1
  key=$c:$n:$k
  out=$work/runs/$c-$k-c$n-r$r.txt
  alive "${label[$k]}" "$(server_pids "$k" | head -n 1)" "${log[$k]}"
  mapfile -t ps < <(server_pids "$k")
  # Every process of the benchmark's servers, to tell the CPU time other
  # work on the machine took during the run.
  mapfile -t all < <(for x in "${servers[@]}"; do server_pids "$x"; done | sort -u)
  d0=$(disk_bytes "$k")
  w0=$(date +%s%N)
  b0=$(busy_ticks)
  o0=$(cpu_ticks "${all[@]}")
  h0=$(child_ticks)
  c0=$(cpu_ticks "${ps[@]}")
  load_cmd "$c" "$k" "$n" "$duration"
  fg_run "${cmd[@]}" >"$out" 2>&1 || [ "$c" = blocked ] || {
    tail -n 20 "$out" >&2
    die "the load run $c against ${label[$k]} at $n connections failed ($out)"
  }
  c1=$(cpu_ticks "${ps[@]}")
  h1=$(child_ticks)
  o1=$(cpu_ticks "${all[@]}")
  b1=$(busy_ticks)
  w1=$(date +%s%N)
  d1=$(disk_bytes "$k")
  req=$(result "$out" requests)
  dur=$(result "$out" duration_us)
  if [ -z "$req" ] || [ -z "$dur" ]; then
    tail -n 20 "$out" >&2
    die "no RESULT line in $out"
  fi
  e=$(($(result "$out" connect) + $(result "$out" read) + $(result "$out" write) + $(result "$out" timeout)))
  s=$(result "$out" status)
  rps[$key]="${rps[$key]:-} $(awk -v n="$req" -v d="$dur" 'BEGIN { printf "%.1f", d ? n / d * 1e6 : 0 }')"
  p50[$key]="${p50[$key]:-} $(awk -v v="$(result "$out" p50_us)" 'BEGIN { printf "%.3f", v / 1000 }')"
  p99[$key]="${p99[$key]:-} $(awk -v v="$(result "$out" p99_us)" 'BEGIN { printf "%.3f", v / 1000 }')"
  cpu_us[$key]="${cpu_us[$key]:-} $(awk -v t="$((c1 - c0))" -v hz="$clk_tck" -v n="$req" 'BEGIN { printf "%.2f", n ? t / hz / n * 1e6 : 0 }')"
  resp_bytes[$key]="${resp_bytes[$key]:-} $(awk -v b="$(result "$out" bytes)" -v n="$req" 'BEGIN { printf "%.0f", n ? b / n : 0 }')"
  written[$key]="${written[$key]:-} $(awk -v b="$((d1 - d0))" -v n="$req" 'BEGIN { printf "%.2f", n ? b / n : 0 }')"
  sock_err[$key]=$((${sock_err[$key]:-0} + e))
  non2xx[$key]=$((${non2xx[$key]:-0} + s))
  other=$(awk -v t="$(((b1 - b0) - (o1 - o0) - (h1 - h0)))" -v hz="$clk_tck" -v d="$((w1 - w0))" 'BEGIN { v = d ? t / hz / (d / 1e9) : 0; printf "%.2f", v < 0 ? 0 : v }')
  others+=("$other")
  if awk -v a="$other" -v b="$others_max" 'BEGIN { exit !(a > b) }'; then
    others_max=$other others_max_run="${case_label[$c]}, $n connections, ${label[$k]}, round $r"
  fi
  say "  $c, $n connections, ${label[$k]}: $(awk -v n="$req" -v d="$dur" 'BEGIN { printf "%.0f", d ? n / d * 1e6 : 0 }') req/s, p99 $(result "$out" p99_us) us, errors $e, non-2xx $s, other work $other cores"
}

cases=(small big blocked https)
declare -A case_label=([small]="2 KB page" [big]="100 KB page" [blocked]="blocked host" [https]="HTTPS 2 KB page (CONNECT)")

say "warming up each server (2 s, 50 connections, the 2 KB page)"
for k in "${servers[@]}"; do
  load_cmd small "$k" 50 2
  fg_run "${cmd[@]}" >"$work/runs/warmup-$k.txt" 2>&1 || true
  load_cmd https "$k" 50 1
  fg_run "${cmd[@]}" >"$work/runs/warmup-https-$k.txt" 2>&1 || true
done

for r in $(seq "$rounds"); do
  say "round $r of $rounds: ${duration} s runs"
  for c in "${cases[@]}"; do
    for n in "${conn_levels[@]}"; do
      for k in "${servers[@]}"; do
        [ "$c" = blocked ] && [ "$k" = direct ] && continue
        measure "$c" "$k" "$n" "$r"
      done
    done
  done
done
declare -A rss_runs hwm_runs
for k in squid warden; do
  [ -n "${pid[$k]:-}" ] || continue
  alive "${label[$k]}" "${pid[$k]}" "${log[$k]}"
  rss_runs[$k]=$(rss_kib "${pid[$k]}")
  hwm_runs[$k]=$(hwm_kib "${pid[$k]}")
done

# metric NAME [LABEL]: the sum of a Prometheus metric's samples on
# Warden's /metrics (those whose labels contain LABEL when given), or "-".
metric() {
  local out
  out=$(curl -s --max-time 5 "http://127.0.0.1:$warden_http/metrics" 2>/dev/null) || out=
  echo "$out" | awk -v m="$1" -v l="${2:-}" '($1 == m || index($1, m "{") == 1) && (l == "" || index($1, l)) { s += $NF; f = 1 }
    END { if (f) printf "%.0f", s; else print "-" }'
}
declare -A metrics
if [ "$warden" = 1 ]; then
  for d in allow block refused error; do
    metrics[req_$d]=$(metric warden_proxy_requests_total "decision=\"$d\"")
  done
  metrics[dials]=$(metric warden_proxy_upstream_dials_total)
  metrics[reused]=$(metric warden_proxy_upstream_reused_total)
  metrics[ev_written]=$(metric warden_events_written_total)
  metrics[ev_dropped]=$(metric warden_events_dropped_total)
  metrics[ev_queued]=$(metric warden_events_queued)
fi

# --- reload check -------------------------------------------------------------------

reload_status=-
reload_errors='' reload_non2xx='' reload_ms='' reload_req='' rss_reload=''
if [ "$warden" = 1 ]; then
  say "reload check: wrk for $reload_duration s against Warden while a new list is imported"
  out=$work/runs/reload.txt
  load_cmd small warden 50 "$reload_duration"
  "${cmd[@]}" >"$out" 2>&1 &
  wrk_pid=$!
  pids+=("$wrk_pid")
  nap 3
  t0=$(date +%s%N)
  "$W" lists import --data "$data" --format plain --category malware-hacking --name local/reload \
    "$work/reload-list.txt" >"$work/import-reload.log" 2>&1 || {
    tail -n 20 "$work/import-reload.log" >&2
    die "warden lists import of the reload list failed"
  }
  for _ in $(seq 300); do
    s=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 -x "127.0.0.1:$warden_port" "http://$reload_probe/" 2>/dev/null || true)
    if [ "$s" = 403 ]; then
      reload_ms=$((($(date +%s%N) - t0) / 1000000))
      break
    fi
    sleep 0.05
  done
  wait "$wrk_pid" || true
  unset 'pids[-1]'
  reload_req=$(result "$out" requests)
  [ -n "$reload_req" ] || {
    tail -n 20 "$out" >&2
    die "no RESULT line in $out"
  }
  reload_errors=$(($(result "$out" connect) + $(result "$out" read) + $(result "$out" write) + $(result "$out" timeout)))
  reload_non2xx=$(result "$out" status)
  alive Warden "${pid[warden]}" "$work/warden.log"
  rss_reload=$(rss_kib "${pid[warden]}")
  if [ -z "$reload_ms" ]; then
    reload_status="no reload seen: $reload_probe not blocked within 15 s of the import"
  fi
fi

# --- soak ---------------------------------------------------------------------------

soak_series=()
if [ "$warden" = 1 ] && [ "$soak" = 1 ]; then
  say "soak: wrk for $soak_duration s against Warden (50 connections, the 2 KB page), RSS every $soak_every s"
  out=$work/runs/soak.txt
  load_cmd small warden 50 "$soak_duration"
  "${cmd[@]}" >"$out" 2>&1 &
  wrk_pid=$!
  pids+=("$wrk_pid")
  soak_series+=("$(rss_kib "${pid[warden]}")")
  for _ in $(seq $((soak_duration / soak_every))); do
    nap "$soak_every"
    alive Warden "${pid[warden]}" "$work/warden.log"
    soak_series+=("$(rss_kib "${pid[warden]}")")
  done
  wait "$wrk_pid" || true
  unset 'pids[-1]'
  soak_req=$(result "$out" requests)
  soak_dur=$(result "$out" duration_us)
  soak_errors=$(($(result "$out" connect) + $(result "$out" read) + $(result "$out" write) + $(result "$out" timeout)))
  soak_non2xx=$(result "$out" status)
fi

# --- report -------------------------------------------------------------------------

median() { echo "$*" | tr ' ' '\n' | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
fmt() { awk -v v="$1" -v d="${2:-0}" 'BEGIN { if (v == "") print "-"; else printf "%.*f", d, v }'; }
mib() { awk -v v="$1" 'BEGIN { if (v == "") print "-"; else printf "%.1f", v / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2fx", a / b }'; }
runs() { echo "$1" | awk '{ for (i = 1; i <= NF; i++) printf "%s%.0f", (i > 1 ? "/" : ""), $i }'; }
# mark VALUE CONDITION: PASS or MISS ("-" when there is no value).
mark() {
  if [ -z "$1" ] || [ "$1" = - ]; then
    echo -
  elif awk -v v="$1" "BEGIN { exit !($2) }"; then
    echo PASS
  else
    echo MISS
  fi
}
# ratio_of A B: A/B as a number, empty when either is missing.
ratio_of() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && b > 0) printf "%.4f", a / b }'; }

declare -A m_rps m_p50 m_p99 m_cpu m_written m_bytes
for c in "${cases[@]}"; do
  for n in "${conn_levels[@]}"; do
    for k in direct warden squid; do
      key=$c:$n:$k
      m_written[$key]=$(median "${written[$key]:-}")
      m_bytes[$key]=$(median "${resp_bytes[$key]:-}")
      m_rps[$key]=$(median "${rps[$key]:-}")
      m_p50[$key]=$(median "${p50[$key]:-}")
      m_p99[$key]=$(median "${p99[$key]:-}")
      m_cpu[$key]=$(median "${cpu_us[$key]:-}")
    done
  done
done

row() { printf '%-40s %12s %12s %12s %8s %8s  %-24s %s\n' "$@"; }
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
os=$(uname -s)
if [ -r /etc/os-release ]; then
  os=$(awk -F= '$1 == "PRETTY_NAME" { gsub(/"/, "", $2); print $2 }' /etc/os-release)
fi
rev=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)
# (wrk -v exits 1 after printing its version.)
squid_version=$( (squid -v 2>/dev/null || true) | awk '/Version/ { v = $NF } END { print v }')
nginx_version=$( (nginx -v 2>&1 || true) | awk -F/ 'NR == 1 { print $2 }')
wrk_version=$( (wrk -v 2>&1 || true) | awk '/^wrk/ { v = $2 } END { print v }')
read -r gen_summary <"$work/gendomains.txt" || true
mode="full run"
[ "$quick" = 1 ] && mode="quick run (--quick)"
[ "$warden" = 0 ] && mode="$mode, without Warden (--no-warden)"

echo
echo "Warden web proxy benchmark (bench/proxy.sh), $mode, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine:   $(nproc) cores${cpu_model:+ ($cpu_model)}, $os, Linux $(uname -r); the load generator, the proxy and"
echo "           the origin share these cores (nothing pinned); load average (1, 5, 15 min) when the script"
echo "           started: $load_start (other work on the machine skews the figures)"
echo "software:  warden $rev, $(go version | awk '{ print $3 }'), squid $squid_version, nginx $nginx_version, wrk $wrk_version"
echo "data:      $data_source; $gen_summary"
echo "           Warden's count: ${domains:-?} distinct domains, policy loaded in ${load_ms:-?} ms (its log)"
echo "           squid: $acl_entries dstdomain entries for the same $all_names names (names under a listed name left out)"
echo "client:    127.0.0.1, in the demo's zone this-computer -> group key-stage-2 (category filtering)"
echo "origin:    nginx $origin (2k.html 2,048 bytes, 100k.html 102,400 bytes, text/html) and https://$origin_tls"
echo "           (self-signed P-256 certificate), worker_processes auto, access log off, keep-alive unlimited"
echo "Warden:    warden serve --proxy-addr 127.0.0.1:$warden_port --proxy-allow-loopback, DNS off,"
echo "           proxy.connect_ports [$tls_port], access log as configured by default, log level info to a file"
echo "squid:     squid -N, 1 process, cache deny all, cache_mem 0, no cache_dir, access_log stdio (on),"
echo "           acl blocked dstdomain -n (file), http_access deny blocked; CONNECT only to port $tls_port"
echo "blocked:   http://$blocked_host/ (listed for the client)"
echo "load:      wrk -t $threads -c N -d ${duration}s --timeout 2s, absolute-form requests through the proxies (a Lua"
echo "           script sets wrk.path and Host), origin-form directly; HTTPS: bench/proxyload -c N -d ${duration}s"
echo "           (CONNECT, one TLS handshake with the origin per connection, then keep-alive GETs)."
echo "           $rounds rounds interleave the servers; figures are the medians of the rounds; latency from the client"
echo "CPU:       utime+stime of the server from /proc/PID/stat (CLK_TCK $clk_tck) over a run / requests answered;"
echo "           the proxy's process alone for Warden and squid, nginx's master and workers for the origin"
echo "others:    CPU taken by other work on the machine during the runs (user+system time from /proc/stat less the"
echo "           servers' and the load generator's, over the run's wall time): median $(median "${others[*]}") cores, most $others_max cores (${others_max_run:-none})"
for k in "${servers[@]}"; do
  echo "check:     ${label[$k]}: ${checks[$k]}"
done
echo
row "" "origin" "Warden" "squid" "Warden/" "Warden/" "target" ""
row "" "directly" "" "" "direct" "squid" "" ""
declare -A target_mark
for c in "${cases[@]}"; do
  for n in "${conn_levels[@]}"; do
    kd=$c:$n:direct kw=$c:$n:warden ks=$c:$n:squid
    t_rps='' m_rps_mark='' t_cpu='' m_cpu_mark='' t_p99='' m_p99_mark=''
    if [ "$n" = 50 ]; then
      case $c in
        small)
          t_rps=">= 0.35x direct"
          target_mark[small_direct]=$(mark "$(ratio_of "${m_rps[$kw]}" "${m_rps[$kd]}")" "v >= 0.35")
          target_mark[small_squid]=$(mark "$(ratio_of "${m_rps[$kw]}" "${m_rps[$ks]}")" "v >= 1.5")
          m_rps_mark=${target_mark[small_direct]}
          t_cpu="<= 60 us"
          target_mark[small_cpu]=$(mark "${m_cpu[$kw]}" "v <= 60")
          m_cpu_mark=${target_mark[small_cpu]}
          t_p99="<= 5 ms"
          target_mark[small_p99]=$(mark "${m_p99[$kw]}" "v <= 5")
          m_p99_mark=${target_mark[small_p99]}
          ;;
        https)
          t_rps=">= 0.6x direct"
          target_mark[https]=$(mark "$(ratio_of "${m_rps[$kw]}" "${m_rps[$kd]}")" "v >= 0.6")
          m_rps_mark=${target_mark[https]}
          ;;
        blocked)
          t_rps=">= Warden's 2 KB page"
          target_mark[blocked]=$(mark "$(ratio_of "${m_rps[$kw]}" "${m_rps[small:50:warden]}")" "v >= 1")
          m_rps_mark=${target_mark[blocked]}
          ;;
      esac
    fi
    echo "${case_label[$c]}, $n connections"
    row "  requests/s" "$(fmt "${m_rps[$kd]}")" "$(fmt "${m_rps[$kw]}")" "$(fmt "${m_rps[$ks]}")" \
      "$(ratio "${m_rps[$kw]}" "${m_rps[$kd]}")" "$(ratio "${m_rps[$kw]}" "${m_rps[$ks]}")" "$t_rps" "$m_rps_mark"
    if [ "$c" = small ] && [ "$n" = 50 ]; then
      row "" "" "" "" "" "" ">= 1.5x squid" "${target_mark[small_squid]}"
    fi
    row "    runs" "$(runs "${rps[$kd]:-}")" "$(runs "${rps[$kw]:-}")" "$(runs "${rps[$ks]:-}")" "" "" "" ""
    row "  latency p50 (ms)" "$(fmt "${m_p50[$kd]}" 3)" "$(fmt "${m_p50[$kw]}" 3)" "$(fmt "${m_p50[$ks]}" 3)" \
      "$(ratio "${m_p50[$kw]}" "${m_p50[$kd]}")" "$(ratio "${m_p50[$kw]}" "${m_p50[$ks]}")" "" ""
    row "  latency p99 (ms)" "$(fmt "${m_p99[$kd]}" 3)" "$(fmt "${m_p99[$kw]}" 3)" "$(fmt "${m_p99[$ks]}" 3)" \
      "$(ratio "${m_p99[$kw]}" "${m_p99[$kd]}")" "$(ratio "${m_p99[$kw]}" "${m_p99[$ks]}")" "$t_p99" "$m_p99_mark"
    row "  server CPU per request (us)" "$(fmt "${m_cpu[$kd]}" 1)" "$(fmt "${m_cpu[$kw]}" 1)" "$(fmt "${m_cpu[$ks]}" 1)" \
      "$(ratio "${m_cpu[$kw]}" "${m_cpu[$kd]}")" "$(ratio "${m_cpu[$kw]}" "${m_cpu[$ks]}")" "$t_cpu" "$m_cpu_mark"
    row "  bytes per response (head and body)" "$(fmt "${m_bytes[$kd]}")" "$(fmt "${m_bytes[$kw]}")" "$(fmt "${m_bytes[$ks]}")" \
      "" "" "" ""
    row "  written to disk per request (bytes)" "-" "$(fmt "${m_written[$kw]}" 1)" "$(fmt "${m_written[$ks]}" 1)" \
      "" "$(ratio "${m_written[$kw]}" "${m_written[$ks]}")" "" ""
    row "  socket errors / non-2xx (all rounds)" "${sock_err[$kd]:--}/${non2xx[$kd]:--}" "${sock_err[$kw]:--}/${non2xx[$kw]:--}" \
      "${sock_err[$ks]:--}/${non2xx[$ks]:--}" "" "" "" ""
  done
done
echo "Memory and start-up"
target_mark[rss]=$(mark "${rss_load[warden]:-}" "v <= 100 * 1024")
row "  RSS after start-up (MiB)" "-" "$(mib "${rss_load[warden]:-}")" "$(mib "${rss_load[squid]}")" "" \
  "$(ratio "${rss_load[warden]:-}" "${rss_load[squid]}")" "<= 100 MiB (1 M domains)" "${target_mark[rss]}"
row "  RSS after the runs (MiB)" "-" "$(mib "${rss_runs[warden]:-}")" "$(mib "${rss_runs[squid]}")" "" \
  "$(ratio "${rss_runs[warden]:-}" "${rss_runs[squid]}")" "" ""
row "  peak RSS while starting, VmHWM (MiB)" "-" "$(mib "${hwm_load[warden]:-}")" "$(mib "${hwm_load[squid]}")" "" \
  "$(ratio "${hwm_load[warden]:-}" "${hwm_load[squid]}")" "" ""
row "  peak RSS after the runs, VmHWM (MiB)" "-" "$(mib "${hwm_runs[warden]:-}")" "$(mib "${hwm_runs[squid]}")" "" \
  "$(ratio "${hwm_runs[warden]:-}" "${hwm_runs[squid]}")" "" ""
target_mark[start]=$(mark "${start_ms[warden]:-}" "v <= 1000")
row "  launch to first proxied answers (ms)" "-" "${start_ms[warden]:--}" "${start_ms[squid]}" "" \
  "$(ratio "${start_ms[warden]:-}" "${start_ms[squid]}")" "<= 1000 ms (1 M domains)" "${target_mark[start]}"
if [ "$warden" = 1 ]; then
  echo "Warden's /metrics after the runs"
  row "  proxy requests: allow / block" "" "${metrics[req_allow]} / ${metrics[req_block]}" "" "" "" "" ""
  row "  proxy requests: refused / error" "" "${metrics[req_refused]} / ${metrics[req_error]}" "" "" "" "" ""
  row "  upstream dials / reused" "" "${metrics[dials]} / ${metrics[reused]}" "" "" "" "" ""
  row "  events written / dropped / queued" "" "${metrics[ev_written]} / ${metrics[ev_dropped]} / ${metrics[ev_queued]}" "" "" "" "" ""
fi
echo "List reload (Warden: wrk -c 50 -d ${reload_duration}s on the 2 KB page; warden lists import of $reload_names new names after 3 s)"
if [ "$warden" = 1 ]; then
  reload_drop=$((reload_errors + reload_non2xx))
  if [ -n "$reload_ms" ]; then
    target_mark[reload]=$(mark "$reload_drop" "v == 0")
  else
    target_mark[reload]=MISS
  fi
  row "  requests during the run" "" "$reload_req" "" "" "" "" ""
  row "  import to new name blocked (ms)" "" "${reload_ms:-never}" "" "" "" "" ""
  row "  socket errors / non-2xx" "" "$reload_errors/$reload_non2xx" "" "" "" "0/0 (no connection dropped)" "${target_mark[reload]}"
  row "  RSS after the reload (MiB)" "" "$(mib "$rss_reload")" "" "" "" "" ""
  [ "$reload_status" = - ] || echo "  $reload_status"
else
  row "  (not run without Warden)" "" "" "" "" "" "no connection dropped" "-"
fi
if [ "${#soak_series[@]}" -gt 0 ]; then
  echo "Soak (Warden: wrk -c 50 -d ${soak_duration}s on the 2 KB page; RSS every ${soak_every} s)"
  series=$(i=0; for v in "${soak_series[@]}"; do printf '%s%d s %s' "$([ "$i" = 0 ] || echo ', ')" $((i * soak_every)) "$(mib "$v")"; i=$((i + 1)); done)
  echo "  RSS (MiB) by time into the run: $series" | fold -s -w 110 | sed '2,$s/^/    /'
  # Flat: no sample above 100 MiB, and the last within 10% of the one at
  # one minute (start-up and the first minutes' growth excluded).
  base=${soak_series[2]:-${soak_series[0]}}
  last=${soak_series[-1]}
  peak=$(printf '%s\n' "${soak_series[@]}" | sort -n | tail -n 1)
  growth=$(awk -v a="$last" -v b="$base" 'BEGIN { printf "%.1f", (a / b - 1) * 100 }')
  target_mark[soak]=$(mark "$growth" "v <= 10 && $peak <= 100 * 1024")
  row "  requests/s over the run" "" "$(awk -v n="$soak_req" -v d="$soak_dur" 'BEGIN { printf "%.0f", d ? n / d * 1e6 : 0 }')" "" "" "" "" ""
  row "  socket errors / non-2xx" "" "$soak_errors/$soak_non2xx" "" "" "" "" ""
  row "  growth 1 min -> end (%), peak (MiB)" "" "$growth, $(mib "$peak")" "" "" "" "flat: <= +10%, <= 100 MiB" "${target_mark[soak]}"
fi
echo
names=(small_direct small_squid small_cpu https blocked small_p99 rss start reload)
declare -A target_name=([small_direct]="2 KB page >= 0.35x direct" [small_squid]="2 KB page >= 1.5x squid"
  [small_cpu]="CPU per request" [https]="HTTPS through CONNECT" [blocked]="blocked path as fast as allowed"
  [small_p99]="p99 latency" [rss]="RSS" [start]="start-up" [reload]="reload drops no connection" [soak]="RSS flat over the soak")
[ "${#soak_series[@]}" -gt 0 ] && names+=(soak)
met=0 missed_text='' counted=0
for t in "${names[@]}"; do
  case ${target_mark[$t]:--} in
    PASS)
      met=$((met + 1))
      counted=$((counted + 1))
      ;;
    MISS)
      counted=$((counted + 1))
      missed_text="${missed_text:+$missed_text, }${target_name[$t]}"
      ;;
  esac
done
if [ "$warden" = 1 ]; then
  echo "Targets met: $met of $counted (at 50 connections where the issue gives no count).${missed_text:+ Missed: $missed_text.}"
else
  echo "Targets: not judged without Warden (--no-warden)."
fi
echo "Note: $(nproc) cores are shared by the load generator, the origin and the proxy under test: read the ratios"
echo "      rather than the absolute figures. wrk counts a 403 as a non-2xx answer, so the blocked host's runs"
echo "      show every answer there; a socket error there means a closed or failed connection."
