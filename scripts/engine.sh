#!/usr/bin/env bash
# Bring up what the reconciler needs on a fresh Debian machine, idempotently:
#   scripts/engine.sh up     install docker.io + busybox-static + docker-registry (the tests'
#                            registry) + chromium and chromium-driver (the status page's browser
#                            test) + openssh-server (ssh:// engine tests) if missing, start dockerd
#                            if no engine answers, build the local base image
#   scripts/engine.sh down   stop the dockerd that "up" started (and nothing else)
#   scripts/engine.sh restart  stop and start that dockerd again (tests of engine restarts)
#   scripts/engine.sh crash    SIGKILL that dockerd, as a crash would, and start it again (tests of recovery)
# RECONCILER_ENGINE_STATE (default /tmp/reconciler-engine) holds the pid and log files;
# RECONCILER_DOCKERD_ARGS adds dockerd arguments, e.g. for a private engine beside another one, on a
# bridge of its own (never --bridge none: a dockerd started with it deletes the host's docker0):
#   ip link add e2br0 type bridge && ip addr add 10.254.254.1/24 dev e2br0 && ip link set e2br0 up
#   RECONCILER_ENGINE_STATE=/tmp/e2 DOCKER_HOST=unix:///tmp/e2/docker.sock \
#   RECONCILER_DOCKERD_ARGS="--data-root /tmp/e2/data --exec-root /tmp/e2/exec -H unix:///tmp/e2/docker.sock
#     --bridge e2br0 --iptables=false --ip-masq=false" scripts/engine.sh up
# Docker Hub may be unreachable, so the base image is made from the host's static busybox.
set -euo pipefail

BASE_IMAGE="${RECONCILER_BASE_IMAGE:-reconciler/busybox:latest}"
STATE_DIR="${RECONCILER_ENGINE_STATE:-/tmp/reconciler-engine}"
PIDFILE="$STATE_DIR/dockerd.pid"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

log() { echo "engine: $*" >&2; }

install_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v git >/dev/null 2>&1 || missing+=(git)  # the daemon fetches git sources with the git CLI
  # Not grep -q: it would stop reading early, busybox (writing line by line) would get
  # SIGPIPE, and pipefail would report busybox missing now and then.
  [ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -x nc >/dev/null || missing+=(busybox-static)
  [ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
  # bench/bench_compose.py and bench_lifecycle.py measure against Debian's docker-compose.
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  # The status page's browser test drives Debian's chromium through its chromedriver (Selenium is
  # given both paths, so it never tries to download a browser).
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
  # ssh:// engines are tested through a private sshd on 127.0.0.1 (not the system's service: see above).
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    $SUDO apt-get update -qq
    # Packages must not start services: the tests start their own engine and a
    # registry on 127.0.0.1; docker-registry's own service would listen on *:5000.
    local blocker=/usr/sbin/policy-rc.d added_blocker=0
    if [ ! -e "$blocker" ]; then
      printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$blocker" >/dev/null
      $SUDO chmod +x "$blocker"
      added_blocker=1
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
    if [ "$added_blocker" = 1 ]; then $SUDO rm -f "$blocker"; fi
  fi
}

engine_answers() { docker info >/dev/null 2>&1; }

start_engine() {
  if engine_answers; then
    return
  fi
  mkdir -p "$STATE_DIR"
  log "starting dockerd (log: $STATE_DIR/dockerd.log)"
  # shellcheck disable=SC2086  # RECONCILER_DOCKERD_ARGS is a list of words
  $SUDO setsid dockerd --pidfile "$STATE_DIR/docker.pid" ${RECONCILER_DOCKERD_ARGS:-} \
    >>"$STATE_DIR/dockerd.log" 2>&1 < /dev/null &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 120); do
    engine_answers && { log "engine ready"; return; }
    sleep 0.5
  done
  log "dockerd did not become ready; last lines of its log:"
  tail -20 "$STATE_DIR/dockerd.log" >&2
  exit 1
}

build_base_image() {
  if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    return
  fi
  log "building $BASE_IMAGE from the host's static busybox"
  local root
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/var/www"
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/bin' --change 'CMD ["sh"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$root"
}

stop_engine() {
  [ -f "$PIDFILE" ] || return 0
  local pid
  pid=$(cat "$PIDFILE")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping dockerd (pid $pid)"
    $SUDO kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -f "$PIDFILE"
}

wait_dead() {
  local state
  for _ in $(seq 1 120); do
    # Gone, or a zombie: where nothing reaps orphans (PID 1 of a container), it stays one.
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || echo gone)
    [ "$state" = gone ] || [ "$state" = Z ] && return 0
    sleep 0.25
  done
}

crash_engine() {
  [ -f "$PIDFILE" ] || { log "refusing to crash an engine this script did not start"; exit 1; }
  local pid containerd config=""
  pid=$(cat "$PIDFILE")
  # dockerd's own containerd dies with it; its pid file must not outlive it (see below).
  containerd=$(pgrep -P "$pid" -x containerd || true)
  if [ -n "$containerd" ]; then
    config=$(tr '\0' '\n' <"/proc/$containerd/cmdline" | awk 'prev == "--config" {print; exit} {prev = $0}')
  fi
  log "killing dockerd (pid $pid) with SIGKILL"
  $SUDO kill -KILL "$pid" 2>/dev/null || true
  wait_dead "$pid"
  [ -z "$containerd" ] || wait_dead "$containerd"
  # Stale pid files make the new dockerd wait for a process that is dead (or a zombie, whose
  # pid still exists): its own, and its containerd's.
  rm -f "$PIDFILE" "$STATE_DIR/docker.pid"
  [ -z "$config" ] || $SUDO rm -f "$(dirname "$config")/containerd.pid"
  start_engine
}

restart_engine() {
  [ -f "$PIDFILE" ] || { log "refusing to restart an engine this script did not start"; exit 1; }
  stop_engine
  start_engine
}

case "${1:-up}" in
  up) install_packages; start_engine; build_base_image ;;
  down) stop_engine ;;
  restart) restart_engine ;;
  crash) crash_engine ;;
  *) echo "usage: $0 up|down|restart|crash" >&2; exit 2 ;;
esac
