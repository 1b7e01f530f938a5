#!/usr/bin/env bash
# A btrfs filesystem for the btrfs storage driver's tests, on a loop device, idempotently (as root):
#   scripts/btrfs.sh up      install btrfs-progs if missing, make a sparse image file (once), attach it to a
#                            loop device, mkfs.btrfs it (once), mount it; prints RECONCILER_BTRFS_ROOT=<mount>
#   scripts/btrfs.sh down    unmount, detach the loop device, remove the image (and with it every subvolume)
#   scripts/btrfs.sh check   exit 0 when this machine can have one (btrfs in the kernel, loop devices), else
#                            say why on stderr and exit 3 (scripts/test.sh then skips the btrfs tests)
# RECONCILER_BTRFS_IMAGE (default /var/lib/reconciler-btrfs/pool.img) is the image file,
# RECONCILER_BTRFS_SIZE (default 4G) its apparent size (sparse: it takes what the filesystem holds),
# RECONCILER_BTRFS_ROOT (default /var/lib/reconciler-btrfs/mnt) where it is mounted.
# A pool for real use is made the same way on a disk or partition instead of an image: see docs/drivers.md.
set -euo pipefail

IMAGE="${RECONCILER_BTRFS_IMAGE:-/var/lib/reconciler-btrfs/pool.img}"
SIZE="${RECONCILER_BTRFS_SIZE:-4G}"
ROOT="${RECONCILER_BTRFS_ROOT:-/var/lib/reconciler-btrfs/mnt}"
LABEL="reconciler-btrfs"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

log() { echo "btrfs: $*" >&2; }

# Whether the kernel can mount btrfs and attach loop devices (a container may lack both).
can_have_btrfs() {
  if ! grep -qw btrfs /proc/filesystems && ! $SUDO modprobe btrfs 2>/dev/null; then
    log "the kernel has no btrfs (not in /proc/filesystems, modprobe btrfs failed)"
    return 1
  fi
  if [ ! -e /dev/loop-control ] && ! grep -qw loop /proc/devices && ! $SUDO modprobe loop 2>/dev/null; then
    log "the kernel has no loop devices (no /dev/loop-control, no loop in /proc/devices)"
    return 1
  fi
}

install_packages() {
  local missing=()
  command -v mkfs.btrfs >/dev/null 2>&1 || missing+=(btrfs-progs)
  command -v losetup >/dev/null 2>&1 || missing+=(mount)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# A machine (a container) may have the loop driver but no device nodes: make them (major 10/237, 7/N).
ensure_loop_nodes() {
  [ -e /dev/loop-control ] || $SUDO mknod -m 0660 /dev/loop-control c 10 237
  local n
  for n in $(seq 0 7); do
    [ -e "/dev/loop$n" ] || $SUDO mknod -m 0660 "/dev/loop$n" b 7 "$n"
  done
}

# The loop device this image is attached to, if any.
attached_device() {
  $SUDO losetup -j "$IMAGE" -O NAME --noheadings 2>/dev/null | head -1 | tr -d ' '
}

# losetup -f picks a free device but a container may lack its node: make the next ones and retry.
attach() {
  local device n
  for _ in 1 2 3 4; do
    if device=$($SUDO losetup -f --show "$IMAGE" 2>/dev/null); then
      echo "$device"
      return
    fi
    n=$($SUDO losetup -f 2>/dev/null | sed 's/[^0-9]//g')
    [ -n "$n" ] && [ ! -e "/dev/loop$n" ] && $SUDO mknod -m 0660 "/dev/loop$n" b 7 "$n"
  done
  log "no free loop device for $IMAGE"
  exit 1
}

up() {
  can_have_btrfs || exit 3
  install_packages
  ensure_loop_nodes
  $SUDO mkdir -p "$(dirname "$IMAGE")" "$ROOT"
  if mountpoint -q "$ROOT"; then
    [ "$(stat -f -c %T "$ROOT")" = btrfs ] || { log "$ROOT is mounted and is not a btrfs"; exit 1; }
    echo "RECONCILER_BTRFS_ROOT=$ROOT"
    return
  fi
  if [ ! -e "$IMAGE" ]; then
    log "making a sparse $SIZE image at $IMAGE"
    $SUDO truncate -s "$SIZE" "$IMAGE"
  fi
  local device
  device=$(attached_device)
  [ -n "$device" ] || device=$(attach)
  if ! $SUDO blkid -p -s TYPE -o value "$device" 2>/dev/null | grep -qx btrfs; then
    log "mkfs.btrfs on $device"
    $SUDO mkfs.btrfs -q -L "$LABEL" "$device" >/dev/null
  fi
  $SUDO mount -t btrfs "$device" "$ROOT"
  log "mounted $device ($IMAGE) at $ROOT"
  echo "RECONCILER_BTRFS_ROOT=$ROOT"
}

down() {
  if mountpoint -q "$ROOT"; then
    log "unmounting $ROOT"
    $SUDO umount "$ROOT"
  fi
  local device
  device=$(attached_device)
  if [ -n "$device" ]; then
    log "detaching $device"
    $SUDO losetup -d "$device"
  fi
  if [ -e "$IMAGE" ]; then
    $SUDO rm -f "$IMAGE"
  fi
  $SUDO rmdir "$ROOT" 2>/dev/null || true
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  check) can_have_btrfs || exit 3 ;;
  *) echo "usage: $0 up|down|check" >&2; exit 2 ;;
esac
