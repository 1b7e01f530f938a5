#!/usr/bin/env bash
# Extra Docker engines on this machine, each a "host" of its own (tests of fleets), idempotently:
#   scripts/engines.sh up N      start engines 1..N (those already answering are left alone)
#   scripts/engines.sh down      stop every engine this script started; remove namespaces, bridge, rules
#   scripts/engines.sh stop I    stop engine I only (a host going down), keeping its namespace
#   scripts/engines.sh start I   start engine I again
#   scripts/engines.sh list      one line per engine: I, unix socket, tcp URL, up|down
#   scripts/engines.sh swarm M W...  start engines M, W... (only those), make M a Swarm manager
#                                advertising its namespace address and join the others as workers;
#                                M1,M2,M3 W...: M1 inits, M2 and M3 join as managers too
# `down` stops every engine of the set at once and removes its data root, swarm state included.
# RECONCILER_ENGINES_BRIDGE names the host bridge (default rcfleet0): a set of engines with a
# state directory, prefix and bridge of its own is torn down without touching another set's.
# Engine I lives in network namespace rcfleetI (made with `ip netns add`, entered with
# `nsenter --net=`: `ip netns exec` remounts /sys and hides the cgroups dockerd needs), joined to
# the host bridge rcfleet0 by a veth pair, at address $PREFIX.(10+I). It listens on
# unix:///run/reconciler-hostI.sock and tcp://$PREFIX.(10+I):2375, keeps its data, exec root and
# pid file under $STATE_DIR/hostI, and has a container bridge of its own (docker0 inside its
# namespace: never --bridge none, a dockerd started with it deletes the host's docker0), and its
# own /etc/docker in a mount namespace of its own: every dockerd 20.10 takes its engine ID from
# /etc/docker/key.json (no flag moves it), and engines sharing an ID would share a stack's record.
# The host engine's iptables drop forwarded traffic; one rule lets rcfleet0 talk to itself.
# RECONCILER_ENGINES_TLS lists engines (e.g. "3") that "up" serves on tcp://ADDR:2376 with
# --tlsverify instead: only clients with a certificate from $STATE_DIR/tls/ca.pem get in
# (client.pem and client-key.pem there are one); they keep TLS across stop and start.
# Needs root, `ip netns` and nsenter; the main engine (scripts/engine.sh up) must be running:
# each extra engine loads the base image from it.
set -euo pipefail

BASE_IMAGE="${RECONCILER_BASE_IMAGE:-reconciler/busybox:latest}"
STATE_DIR="${RECONCILER_ENGINES_STATE:-/tmp/reconciler-engines}"
PREFIX="${RECONCILER_ENGINES_PREFIX:-10.232.0}"  # a /24 of the host's own, for the bridge and the engines
BRIDGE="${RECONCILER_ENGINES_BRIDGE:-rcfleet0}"
# How often swarm nodes report to the managers (docker's default 5s): a lost node is noticed after a few.
HEARTBEAT="${RECONCILER_SWARM_HEARTBEAT:-5s}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

log() { echo "engines: $*" >&2; }
TLS_DIR="$STATE_DIR/tls"

netns() { echo "rcfleet$1"; }
address() { echo "$PREFIX.$((10 + $1))"; }
socket() { echo "/run/reconciler-host$1.sock"; }
host_dir() { echo "$STATE_DIR/host$1"; }
uses_tls() { [ -e "$(host_dir "$1")/tls" ]; }
tcp_url() { if uses_tls "$1"; then echo "tcp://$(address "$1"):2376"; else echo "tcp://$(address "$1"):2375"; fi; }
on() { local i=$1; shift; docker -H "unix://$(socket "$i")" "$@"; }
answers() { on "$1" info >/dev/null 2>&1; }

forward_rule() { $SUDO iptables "$1" FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT; }

make_bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    $SUDO ip link add "$BRIDGE" type bridge
    $SUDO ip addr add "$PREFIX.1/24" dev "$BRIDGE"
    $SUDO ip link set "$BRIDGE" up
  fi
  forward_rule -C 2>/dev/null || forward_rule -I
}

make_netns() {
  local i=$1 ns
  ns=$(netns "$i")
  [ -e "/run/netns/$ns" ] && return
  $SUDO ip netns add "$ns"
  $SUDO ip link add "rcfv$i" type veth peer name "rcfp$i"
  $SUDO ip link set "rcfv$i" master "$BRIDGE" up
  $SUDO ip link set "rcfp$i" netns "$ns"
  $SUDO nsenter --net="/run/netns/$ns" sh -c "
    ip link set lo up &&
    ip link set rcfp$i name eth0 &&
    ip addr add $(address "$i")/24 dev eth0 &&
    ip link set eth0 up &&
    ip route add default via $PREFIX.1"
}

make_certs() {  # a CA, a server certificate for every engine address, a client certificate
  [ -f "$TLS_DIR/client-key.pem" ] && return
  log "making TLS certificates in $TLS_DIR"
  mkdir -p "$TLS_DIR"
  local sans="IP:127.0.0.1" n
  for n in $(seq 1 20); do sans="$sans,IP:$(address "$n")"; done
  (
    cd "$TLS_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=reconciler test CA" \
      -keyout ca-key.pem -out ca.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=reconciler test engine" -keyout server-key.pem \
      -out server.csr 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$sans" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
      -extfile server.ext -out server.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=reconciler test client" -keyout client-key.pem \
      -out client.csr 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
      -extfile client.ext -out client.pem 2>/dev/null
    rm -f ./*.csr ./*.ext ca.srl
  )
}

start_engine() {
  local i=$1 dir tcp
  dir=$(host_dir "$i")
  answers "$i" && return
  make_bridge
  make_netns "$i"
  mkdir -p "$dir"
  rm -f "$dir/docker.pid"  # a stale pid file makes dockerd refuse to start
  log "starting engine $i at $(address "$i") (log: $dir/dockerd.log)"
  mkdir -p "$dir/etc"
  tcp=(-H "tcp://$(address "$i"):2375")
  if uses_tls "$i"; then
    make_certs
    tcp=(--tlsverify --tlscacert "$TLS_DIR/ca.pem" --tlscert "$TLS_DIR/server.pem" --tlskey "$TLS_DIR/server-key.pem"
         -H "tcp://$(address "$i"):2376")
  fi
  # A Swarm node (marked by `swarm`) runs a task from the image it has: the base image loaded from the
  # main engine, which no registry holds (by default every task first tries a pull, and waits for it).
  local offline=0
  [ -e "$dir/swarm" ] && offline=1
  # A mount namespace of its own, where /etc/docker is the engine's own directory.
  DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=$offline $SUDO nsenter --net="/run/netns/$(netns "$i")" setsid unshare --mount --propagation private sh -c '
    mount --bind "$1/etc" /etc/docker && shift && exec dockerd "$@"' sh "$dir" \
    --data-root "$dir/data" --exec-root "/run/rcfleet$i" --pidfile "$dir/docker.pid" \
    -H "unix://$(socket "$i")" "${tcp[@]}" \
    >>"$dir/dockerd.log" 2>&1 </dev/null &
  echo $! >"$dir/dockerd.pid"
}

wait_ready() {
  local i=$1 pid
  pid=$(cat "$(host_dir "$i")/dockerd.pid")
  for _ in $(seq 1 120); do
    answers "$i" && return
    kill -0 "$pid" 2>/dev/null || break  # it died: no use waiting
    sleep 0.5
  done
  log "engine $i did not become ready; last lines of its log:"
  tail -20 "$(host_dir "$i")/dockerd.log" >&2
  exit 1
}

load_base_image() {
  local i=$1
  on "$i" image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return
  log "loading $BASE_IMAGE into engine $i"
  docker save "$BASE_IMAGE" | on "$i" load >/dev/null
}

stop_engine() {
  local i=$1 pidfile pid
  pidfile="$(host_dir "$i")/dockerd.pid"
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping engine $i (pid $pid)"
    $SUDO kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && $SUDO kill -KILL "$pid"
  fi
  rm -f "$pidfile"
}

started() {  # the engines this script started, by number
  local dir
  for dir in "$STATE_DIR"/host[0-9]*; do
    [ -d "$dir" ] && echo "${dir##*/host}"
  done | sort -n
}

ready_all() {  # wait for engines I... and load the base image into each, all at once
  local i pids=() failed=0
  for i in "$@"; do (wait_ready "$i" && load_base_image "$i") & pids+=($!); done
  for i in "${pids[@]}"; do wait "$i" || failed=1; done
  [ "$failed" = 0 ] || { log "engines $* did not all come up"; exit 1; }
}

up() {
  local n=$1 i
  [ "$n" -ge 1 ] 2>/dev/null || { echo "usage: $0 up N (N >= 1)" >&2; exit 2; }
  docker image inspect "$BASE_IMAGE" >/dev/null || { log "the main engine has no $BASE_IMAGE (scripts/engine.sh up)"; exit 1; }
  for i in ${RECONCILER_ENGINES_TLS:-}; do
    [ "$i" -le "$n" ] && ! answers "$i" && mkdir -p "$(host_dir "$i")" && touch "$(host_dir "$i")/tls"
  done
  for i in $(seq 1 "$n"); do start_engine "$i"; done  # the engines boot side by side
  ready_all $(seq 1 "$n")
  log "$n engine(s) ready"
}

swarm() {  # swarm M[,M2...] W...: the first M inits, the other Ms join as managers, the Ws as workers; idempotent
  local managers first i token role joined
  IFS=, read -r -a managers <<<"$1"
  first=${managers[0]}
  shift
  docker image inspect "$BASE_IMAGE" >/dev/null || { log "the main engine has no $BASE_IMAGE (scripts/engine.sh up)"; exit 1; }
  for i in "${managers[@]}" "$@"; do
    if answers "$i" && [ ! -e "$(host_dir "$i")/swarm" ]; then
      log "engine $i runs, but not as a Swarm node of this script (stop it first: $0 stop $i)"; exit 1
    fi
    mkdir -p "$(host_dir "$i")" && touch "$(host_dir "$i")/swarm"
    start_engine "$i"
  done
  ready_all "${managers[@]}" "$@"
  if [ "$(on "$first" info --format '{{.Swarm.ControlAvailable}}')" != "true" ]; then
    log "engine $first: swarm init at $(address "$first")"
    on "$first" swarm init --advertise-addr "$(address "$first")" --listen-addr "$(address "$first"):2377" \
      --dispatcher-heartbeat "$HEARTBEAT" >/dev/null
  fi
  for i in "${managers[@]:1}" "$@"; do
    role=worker
    for joined in "${managers[@]:1}"; do [ "$joined" = "$i" ] && role=manager; done
    if [ "$(on "$i" info --format '{{.Swarm.LocalNodeState}}')" != "active" ]; then
      token=$(on "$first" swarm join-token -q "$role")
      log "engine $i: joining the swarm of engine $first as a $role"
      on "$i" swarm join --token "$token" --advertise-addr "$(address "$i")" --listen-addr "$(address "$i"):2377" \
        "$(address "$first"):2377" >/dev/null
    fi
  done
  log "swarm of engines ${managers[*]} (managers) $* ready"
}

down() {
  local i ns
  # All at once: each engine's stop waits on that engine alone. No swarm leave first: every node of
  # the set goes, data root and all, so no swarm state outlives it (and a leave waits on the others).
  for i in $(started); do stop_engine "$i" & done
  wait
  for i in $(started); do
    ns=$(netns "$i")
    if [ -e "/run/netns/$ns" ]; then $SUDO ip netns del "$ns"; fi  # takes its veth end (and the pair) along
    $SUDO ip link del "rcfv$i" 2>/dev/null || true
    # dockerd leaves its mounts under the data root; unmount before removing it.
    grep -o " $(host_dir "$i")/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 $SUDO umount -l 2>/dev/null || true
    $SUDO rm -rf "$(host_dir "$i")" "/run/rcfleet$i" "$(socket "$i")"
  done
  $SUDO rm -rf "$TLS_DIR"
  while forward_rule -C 2>/dev/null; do forward_rule -D; done
  if ip link show "$BRIDGE" >/dev/null 2>&1; then $SUDO ip link del "$BRIDGE"; fi
}

list() {
  local i state
  for i in $(started); do
    state=down
    answers "$i" && state=up
    echo "$i unix://$(socket "$i") $(tcp_url "$i") $state"
  done
}

case "${1:-}" in
  up) up "${2:-3}" ;;
  down) down ;;
  stop) stop_engine "${2:?engine number}" ;;
  start) start_engine "${2:?engine number}"; wait_ready "$2" ;;
  list) list ;;
  swarm) shift; [ $# -ge 1 ] || { echo "usage: $0 swarm MANAGER[,MANAGER...] [WORKER...]" >&2; exit 2; }; swarm "$@" ;;
  *) echo "usage: $0 up N|down|stop I|start I|list|swarm M W..." >&2; exit 2 ;;
esac
