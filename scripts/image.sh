#!/usr/bin/env bash
# `make image`: builds the product image and the Rasa image with podman.
#   localhost/switchboard:$IMAGE_TAG       deploy/Containerfile        (router + web)
#   localhost/switchboard-rasa:$IMAGE_TAG  deploy/rasa.Containerfile   (Rasa server + model)
# No registry: the base image is Debian bookworm made here with debootstrap (once per machine,
# kept in podman's store as $BASE_IMAGE). Layers are cached by podman between builds, so a
# rebuild after a code change redoes only the last layers.
# Env: IMAGE_TAG (dev), MODEL (a models/*.tar.gz; default: the model of the current training
# data, trained when missing), PY310 (python3.10 of the Rasa image), REBUILD_BASE=1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TAG=${IMAGE_TAG:-dev}
BASE_IMAGE=${BASE_IMAGE:-localhost/switchboard-base:bookworm}
export CONTAINERS_CONF="$ROOT/deploy/podman/containers.conf"
# runc + cgroupfs: crun and the systemd cgroup manager fail on hosts without systemd/cgroup v2
# delegation (the CI and dev machines); both work everywhere podman does.
PODMAN=(podman --runtime "$(command -v runc || echo /usr/sbin/runc)" --cgroup-manager=cgroupfs)
t0=$SECONDS
bash scripts/sysdeps.sh

if [ -n "${REBUILD_BASE:-}" ] || ! "${PODMAN[@]}" image exists "$BASE_IMAGE"; then
  echo "image: building $BASE_IMAGE with debootstrap (once per machine)" >&2
  rootfs=$(mktemp -d /var/tmp/switchboard-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase bookworm "$rootfs" >/dev/null
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | "${PODMAN[@]}" import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"; trap - EXIT
  echo "image: base ready after $((SECONDS - t0)) s" >&2
fi

# The model baked into the Rasa image.
if [ -z "${MODEL:-}" ]; then
  MODEL=$(.venv/bin/python -c 'from intents.rasa import model_for_data, RasaPaths; from pathlib import Path; r=Path.cwd(); print(model_for_data(RasaPaths(root=r, venv=r/".venv-rasa", project=r/"intents", models=r/"models")))')
  [ -f "$MODEL" ] || .venv/bin/switchboard train
fi
[ -f "$MODEL" ] || { echo "error: MODEL=$MODEL does not exist" >&2; exit 1; }
MODEL_DIR=$(cd "$(dirname "$MODEL")" && pwd -P); MODEL_FILE=$(basename "$MODEL")

# Python 3.10 for the Rasa image: the same interpreter `make venvs` builds .venv-rasa with.
if [ -z "${PY310:-}" ]; then
  PY310=$(.venv/bin/python -c 'from intents.rasa import find_python310; print(find_python310() or "")')
fi
[ -n "$PY310" ] && [ -x "$PY310" ] || { echo "error: Python 3.10 is needed for the Rasa image (PY310=...)" >&2; exit 1; }
PY310_PREFIX=$("$PY310" -c 'import sys; print(sys.base_prefix)')
case "$PY310_PREFIX" in
  /usr|/usr/local|/)
    echo "error: $PY310 is a system Python (prefix $PY310_PREFIX): the Rasa image copies a self-contained" \
         "prefix; install one with pyenv (pyenv install 3.10.13) and pass PY310=\$(pyenv root)/versions/3.10.13/bin/python3.10" >&2
    exit 1;;
esac

# The CA bundle pip trusts inside the build (a build secret: not stored in the images).
CA_BUNDLE=${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}

build() {  # build <image> <containerfile> [args...]
  local img=$1 file=$2; shift 2
  local s=$SECONDS
  "${PODMAN[@]}" build --layers --format docker --network=host --build-arg "BASE=$BASE_IMAGE" \
    --secret "id=ca,src=$CA_BUNDLE" \
    -f "$file" -t "$img" "$@" "$ROOT" >&2
  echo "image: $img built in $((SECONDS - s)) s" >&2
}
build "localhost/switchboard:$TAG" deploy/Containerfile
build "localhost/switchboard-rasa:$TAG" deploy/rasa.Containerfile \
  --build-context "py310=$PY310_PREFIX" --build-context "models=$MODEL_DIR" --build-arg "MODEL=$MODEL_FILE"
echo "image: done in $((SECONDS - t0)) s: localhost/switchboard:$TAG localhost/switchboard-rasa:$TAG ($MODEL_FILE)" >&2
