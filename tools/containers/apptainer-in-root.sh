#!/bin/sh
# apptainer ARGS... run inside a root folder that has Apptainer (for machines that have
# none of their own; build.sh makes the root). Needs root; the root is entered with
# pivot_root (Apptainer refuses a plain chroot).
#
#   APPTAINER_ROOT  the root folder
#   BIND_DIRS       colon-separated folders made visible at their own paths
#   AS_USER         UID:GID to run apptainer as (optional; added to the root's passwd)
#
# `run` and `exec` get a network namespace of their own: the container has no network.
set -eu
: "${APPTAINER_ROOT:?APPTAINER_ROOT is not set}"
net=
case "${1:-}" in run|exec) net=--net ;; esac
exec unshare --mount $net --fork sh -ec '
  here=$1; shift
  R=$APPTAINER_ROOT
  mount --make-rprivate /
  mount --bind "$R" "$R"
  mount -t proc proc "$R/proc"
  mount --rbind /dev "$R/dev"
  mount --rbind /sys "$R/sys"
  mount -t tmpfs tmpfs "$R/tmp"
  IFS=:
  for dir in ${BIND_DIRS:-}; do
    mkdir -p "$R$dir"
    mount --rbind "$dir" "$R$dir"
  done
  unset IFS
  cp /etc/resolv.conf /etc/hosts "$R/etc/"
  mkdir -p "$R/.oldroot"
  cd "$R"
  pivot_root . .oldroot
  umount -l /.oldroot
  cd "$here" 2>/dev/null || cd /
  if [ -n "${AS_USER:-}" ]; then
    uid=${AS_USER%:*} gid=${AS_USER#*:}
    grep -q "^[^:]*:[^:]*:$uid:" /etc/passwd || echo "user$uid:x:$uid:$gid::/tmp:/bin/sh" >> /etc/passwd
    grep -q "^[^:]*:[^:]*:$gid:" /etc/group || echo "group$gid:x:$gid:" >> /etc/group
    exec setpriv --reuid="${AS_USER%:*}" --regid="${AS_USER#*:}" --clear-groups apptainer "$@"
  fi
  exec apptainer "$@"' sh "$PWD" "$@"
