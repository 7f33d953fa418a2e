#!/usr/bin/env bash
# Create .venv with the pinned dependency set and install bci-toolkit into it.
# Idempotent: a second run only reinstalls when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv/.bci-setup-stamp
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch is pinned in the same resolve as braindecode so that pip takes the CPU wheel.
.venv/bin/python -m pip install -q -e ".[test,bench,dev]" "torch==2.13.0"
# braindecode 1.8.1 requires torchaudio, whose only wheel is a CUDA build whose compiled
# extensions fail to load beside a CPU torch. Without them torchaudio falls back to pure
# Python, which is all braindecode needs.
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if .venv/bin/python -c 'import torch, sys; sys.exit(0 if torch.version.cuda is None else 1)'; then
  rm -f "$site"/torchaudio/lib/*.so
fi
# PYTHONDONTWRITEBYTECODE is often set on shared machines; byte-compile once here so that
# each process does not re-parse the whole scientific stack (~16 s per import otherwise).
.venv/bin/python -m compileall -q -j 0 "$site" bci_toolkit >/dev/null 2>&1 || true
touch "$stamp"
