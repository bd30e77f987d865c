#!/usr/bin/env bash
# Builds KenLM's `lmplz` and `build_binary` (needed only to *build* language models;
# scoring uses the `kenlm` Python module) from the kenlm sdist on PyPI, once, into
# .tools/kenlm/bin of this checkout.  Skips everything when the binaries exist.
#   deploy/build-kenlm.sh [PYTHON]     (PYTHON: interpreter whose pip downloads the sdist)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${1:-.venv/bin/python}
KENLM_VERSION=0.3.0
DEST=$ROOT/.tools/kenlm
BIN=$DEST/bin
if [[ -x $BIN/lmplz && -x $BIN/build_binary ]]; then
  echo "kenlm: $BIN/lmplz and build_binary present, skipping build"
  exit 0
fi

# OS packages: cmake, a C++ compiler and Boost (program_options, system, thread, test)
# plus the compression libraries lmplz reads corpora with.  Installed only when missing.
PKGS=(cmake g++ make libboost-program-options-dev libboost-system-dev libboost-thread-dev
      libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev)
MISSING=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || MISSING+=("$p")
done
if (( ${#MISSING[@]} )); then
  echo "kenlm: installing OS packages: ${MISSING[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${MISSING[@]}" >/dev/null
fi

WORK=$DEST/src
mkdir -p "$WORK"
if [[ ! -f $WORK/kenlm-$KENLM_VERSION.tar.gz ]]; then
  # --no-binary for kenlm only: `:all:` would also compile its build dependency cmake from source.
  "$PY" -m pip download -q --no-deps --no-binary kenlm "kenlm==$KENLM_VERSION" -d "$WORK"
fi
rm -rf "$WORK/kenlm-$KENLM_VERSION"
tar -xzf "$WORK/kenlm-$KENLM_VERSION.tar.gz" -C "$WORK"
BUILD=$WORK/kenlm-$KENLM_VERSION/build
mkdir -p "$BUILD"
JOBS=$(nproc 2>/dev/null || echo 2)
echo "kenlm: building lmplz and build_binary (about 3 minutes on 2 cores)"
cmake -S "$WORK/kenlm-$KENLM_VERSION" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DKENLM_MAX_ORDER=6 >"$WORK/cmake.log" 2>&1 \
  || { tail -30 "$WORK/cmake.log"; exit 1; }
cmake --build "$BUILD" --target lmplz build_binary -j "$JOBS" >"$WORK/build.log" 2>&1 \
  || { tail -30 "$WORK/build.log"; exit 1; }
mkdir -p "$BIN"
cp "$BUILD/bin/lmplz" "$BUILD/bin/build_binary" "$BIN/"
rm -rf "$WORK/kenlm-$KENLM_VERSION"
echo "kenlm: built $BIN/lmplz $BIN/build_binary"
