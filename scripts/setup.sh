#!/usr/bin/env bash
# Set up a fresh machine: a virtual environment with the project and its development tools.
# PyTorch comes from pip (on this project's machines its wheels lie on local disk).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
if ! .venv/bin/python -c "import torch, torchvision" 2>/dev/null; then
  echo "installing torch and torchvision (large; once)"
  .venv/bin/pip install -q "torch==2.14.1" "torchvision==0.29.1"
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q -e '.[dev,bench]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi
echo "environment ready: .venv"
