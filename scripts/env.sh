# Sourced by demo.sh and test.sh: finds Python 3.11 and creates/reuses .venv in the repo root.
# The install is skipped when requirements.txt and pyproject.toml are unchanged since the last one.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

find_python() {
  for cand in python3 python3.11; do
    if command -v "$cand" >/dev/null 2>&1 &&
       "$cand" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
      echo "$cand"; return 0
    fi
  done
  return 1
}

if [ ! -x .venv/bin/python ]; then
  PY="$(find_python)" || {
    echo "error: gan_compress needs Python 3.11 (tensorflow-compression 2.14's last release" \
         "supports no newer Python); neither python3 nor python3.11 is 3.11 here." >&2
    exit 2
  }
  echo "creating .venv with $($PY --version)" >&2
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
  echo "error: .venv is not Python 3.11; remove it (rm -rf .venv) and run again" >&2
  exit 2
fi
STAMP=".venv/.gan_compress-installed"
WANT="$(cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
  echo "installing requirements into .venv (first time: a few minutes, ~2.3 GB)" >&2
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements.txt
  .venv/bin/python -m pip install --quiet --no-deps -e .
  echo "$WANT" > "$STAMP"
fi
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
