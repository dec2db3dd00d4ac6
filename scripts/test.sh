#!/usr/bin/env bash
# Quick start 2: set up (or reuse) .venv, then run the whole test suite.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
exec .venv/bin/python -m pytest -q -p no:cacheprovider --durations=20 "$@"
