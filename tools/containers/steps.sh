# Functions of build.sh (sourced). They read LOGS, CACHE and ENGINE from the caller.

# fail MESSAGE: one line on stderr, exit 1
fail() {
  echo "build.sh: $*" >&2
  exit 1
}

# step NAME COMMAND...: run COMMAND with its output in $LOGS/NAME.log and print its time;
# a failure names the step and shows the end of its log
step() {
  local name=$1 start=$SECONDS rc=0
  shift
  echo "== $name" >&2
  "$@" >"$LOGS/$name.log" 2>&1 || rc=$?
  if [ "$rc" != 0 ]; then
    echo "build.sh: step '$name' failed (exit $rc); the end of $LOGS/$name.log:" >&2
    tail -n 30 "$LOGS/$name.log" | sed 's/^/    /' >&2
    exit 1
  fi
  echo "   $name: $(( SECONDS - start )) s" >&2
}

# need COMMAND PACKAGE...: when COMMAND is missing, install the Debian PACKAGEs (as root)
# or stop with a one-line message
need() {
  local cmd=$1
  shift
  command -v "$cmd" >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    step "install-$cmd" sh -c 'apt-get install -y -q "$@" || { apt-get update -q && apt-get install -y -q "$@"; }' sh "$@"
  else
    fail "$cmd is missing: install it (Debian packages: $*), or run this script as root on Debian"
  fi
}

# the first Debian mirror this machine's apt uses
debian_mirror() {
  local mirror
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  echo "${mirror:-http://deb.debian.org/debian}"
}

# make_base_standin NAME: Debian bookworm with Python 3.11 and pip (as the official
# python:3.11-slim-bookworm image has them), imported as the local image NAME
make_base_standin() {
  local tar=$CACHE/base-standin.tar
  if [ ! -s "$tar" ]; then
    mmdebstrap --variant=minbase \
      --include=python3,python3-pip,python3-venv,python-is-python3,ca-certificates \
      --customize-hook='rm -f "$1"/usr/lib/python3.*/EXTERNALLY-MANAGED' \
      bookworm "$CACHE/base-standin.part.tar" "$(debian_mirror)"
    mv "$CACHE/base-standin.part.tar" "$tar"
  fi
  "$ENGINE" import --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' "$tar" "$1"
}

# make_apptainer_root DIR: a Debian sid root with Apptainer
make_apptainer_root() {
  local root=$1
  [ -x "$root/usr/bin/apptainer" ] && return 0
  rm -rf "$root.part"
  mmdebstrap --variant=minbase --aptopt='Acquire::Check-Valid-Until "false"' \
    --include=apptainer,squashfs-tools,ca-certificates,util-linux sid "$root.part" "$(debian_mirror)"
  echo root:100000:65536 > "$root.part/etc/subuid"
  echo root:100000:65536 > "$root.part/etc/subgid"
  rm -rf "$root"
  mv "$root.part" "$root"
}

