#!/usr/bin/env bash
# Build the Docker image and the Apptainer image of bids-stroke, then smoke-test both.
#
#   tools/containers/build.sh [--no-apptainer] [--no-smoke]
#
# Environment:
#   CONTAINER_ENGINE            podman (default) or docker
#   BIDS_STROKE_CONTAINER_DIR   logs, image archive, SIF and smoke-test data (default: .ctr)
#   BIDS_STROKE_CONTAINER_CACHE kept between runs on one machine: the engine's storage (its
#                               layer cache), the base stand-in, the Apptainer root and the
#                               SIF of the last image and Singularity.def
#                               (default: $BIDS_STROKE_CONTAINER_DIR/cache)
#
# Every step writes its output to <dir>/logs/<step>.log; a failed step stops the script,
# naming the step and showing the end of its log. Prints the image and SIF sizes, the build
# times and the smoke tests' timings.
#
# On a machine without a container registry (the Dockerfile's FROM cannot be pulled), a
# stand-in for the base image is made from the machine's Debian mirror and tagged with the
# FROM name, so the Dockerfile is built unchanged. Where there is no `apptainer`, it runs
# from a Debian sid root (Debian 12 has no package). Both need root and apt.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
# shellcheck source=tools/containers/steps.sh
source "$ROOT/tools/containers/steps.sh"

APPTAINER_BUILD=1 SMOKE=1
for arg in "$@"; do
  case $arg in
    --no-apptainer) APPTAINER_BUILD=0 ;;
    --no-smoke) SMOKE=0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) fail "unknown option $arg (see --help)" ;;
  esac
done

VERSION=$(cat version)
IMAGE=$(python3 -c 'from bids_stroke._version import CONTAINER_IMAGE; print(CONTAINER_IMAGE)') \
  || fail "bids_stroke does not import: install it first (pip install -e '.[test]')"
W=$(mkdir -p "${BIDS_STROKE_CONTAINER_DIR:-$ROOT/.ctr}" && cd "${BIDS_STROKE_CONTAINER_DIR:-$ROOT/.ctr}" && pwd)
CACHE=${BIDS_STROKE_CONTAINER_CACHE:-$W/cache}
LOGS=$W/logs
ARCHIVE=$W/bids-stroke-$VERSION.tar
SIF=$W/bids-stroke-$VERSION.sif
ENGINE=${CONTAINER_ENGINE:-podman}
BASE=$(awk 'toupper($1) == "FROM" {print $2; exit}' Dockerfile)
mkdir -p "$LOGS" "$CACHE" "$W/tmp"
export TMPDIR=$W/tmp DEBIAN_FRONTEND=noninteractive

# --- tools ------------------------------------------------------------------------------
if [ "$ENGINE" = podman ]; then need podman podman buildah uidmap runc; else need "$ENGINE" docker.io; fi
HADOLINT=$(command -v hadolint) || fail "hadolint is missing: pip install -e '.[test]'"

if [ "$ENGINE" = podman ]; then
  # storage in the cache (its layer cache survives a clean clone), runc (crun cannot manage
  # cgroups in hybrid mode), file and process limits within the hard limits
  mkdir -p "$CACHE/storage" "$CACHE/run"
  printf '[storage]\ndriver = "overlay"\nrunroot = "%s"\ngraphroot = "%s"\n' \
    "$CACHE/run" "$CACHE/storage" > "$W/storage.conf"
  printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n[engine]\nruntime = "runc"\n' \
    "$(ulimit -Hn)" "$(ulimit -Hn)" 32768 32768 > "$W/containers.conf"
  export CONTAINERS_STORAGE_CONF=$W/storage.conf CONTAINERS_CONF=$W/containers.conf
fi

# --- Docker image -----------------------------------------------------------------------
step lint "$HADOLINT" --failure-threshold warning Dockerfile

if ! "$ENGINE" image exists "$BASE" 2>/dev/null && ! "$ENGINE" pull -q "$BASE" >"$LOGS/pull.log" 2>&1; then
  echo "   $BASE cannot be pulled (no registry): a stand-in from the Debian mirror is tagged with its name" >&2
  need mmdebstrap mmdebstrap
  step base-standin make_base_standin "$BASE"
fi

# pip inside the build trusts the CA bundle pip trusts here (a proxy's CA, where there is one)
BUILD_MOUNTS=()
CA=${PIP_CERT:-$(python3 -m pip config list 2>/dev/null | sed -n "s/^global\.cert='\(.*\)'$/\1/p")}
if [ -n "$CA" ] && [ -r "$CA" ]; then
  printf '[global]\ncert = /run/host-ca.crt\n' > "$W/pip.conf"
  BUILD_MOUNTS=(-v "$CA:/run/host-ca.crt:ro" -v "$W/pip.conf:/etc/pip.conf:ro")
fi
BUILD_ARGS=()
[ -n "${TEMPLATEFLOW_TEMPLATES+x}" ] && BUILD_ARGS=(--build-arg "TEMPLATEFLOW_TEMPLATES=$TEMPLATEFLOW_TEMPLATES")
start=$SECONDS
step docker-build "$ENGINE" build --pull=never "${BUILD_MOUNTS[@]}" "${BUILD_ARGS[@]}" -t "$IMAGE" .
DOCKER_BUILD_S=$(( SECONDS - start ))
IMAGE_MB=$(( $("$ENGINE" image inspect --format '{{.Size}}' "$IMAGE") / 1000000 ))

# --- Apptainer image --------------------------------------------------------------------
APPTAINER=$(command -v apptainer || true)
if [ "$APPTAINER_BUILD" = 1 ]; then
  if [ -z "$APPTAINER" ]; then
    echo "   apptainer is not installed: it runs from a Debian sid root" >&2
    need mmdebstrap mmdebstrap
    step apptainer-root make_apptainer_root "$CACHE/apptainer-root"
    APPTAINER=$ROOT/tools/containers/apptainer-in-root.sh
    export APPTAINER_ROOT=$CACHE/apptainer-root BIND_DIRS=$ROOT:$W APPTAINER_TMPDIR=$TMPDIR
  fi
  # the SIF of this very image and definition is reused from the cache
  IMAGE_ID=$("$ENGINE" image inspect --format '{{.Id}}' "$IMAGE")
  CACHED_SIF=$CACHE/sif-${IMAGE_ID:0:16}-$(sha256sum Singularity.def | cut -c1-16).sif
  rm -f "$SIF"
  if [ -s "$CACHED_SIF" ]; then
    cp "$CACHED_SIF" "$SIF"
    SIF_BUILT="reused: built before from this image and Singularity.def"
  else
    step docker-save "$ENGINE" save -o "$ARCHIVE" "$IMAGE"
    start=$SECONDS
    step apptainer-build "$APPTAINER" build --fakeroot --build-arg "archive=$ARCHIVE" "$SIF" "$ROOT/Singularity.def"
    SIF_BUILT="built in $(( SECONDS - start )) s"
    rm -f "$ARCHIVE" "$CACHE"/sif-*.sif
    cp "$SIF" "$CACHED_SIF"
  fi
  SIF_MB=$(( $(stat -c %s "$SIF") / 1000000 ))
fi

echo "image $IMAGE: ${IMAGE_MB} MB, built in ${DOCKER_BUILD_S} s"
[ "$APPTAINER_BUILD" = 1 ] && echo "sif $(basename "$SIF"): ${SIF_MB} MB, $SIF_BUILT"

# --- smoke tests ------------------------------------------------------------------------
if [ "$SMOKE" = 1 ]; then
  SMOKE_ARGS=(--dir "$W/smoke" --docker "$ENGINE" --image "$IMAGE")
  [ "$APPTAINER_BUILD" = 1 ] && SMOKE_ARGS+=(--apptainer "$APPTAINER" --sif "$SIF")
  python3 "$ROOT/tools/containers/smoke.py" "${SMOKE_ARGS[@]}" 2>&1 | tee "$LOGS/smoke.log" \
    || fail "step 'smoke' failed (the FAIL lines above); its log: $LOGS/smoke.log, each run's in $W/smoke/logs"
fi
echo "build.sh: done in ${SECONDS} s"
