#!/usr/bin/env bash
# Quick start 2: set up (or reuse) .venv, then run the whole test suite.
# Two pytest workers (pytest-xdist, work stealing): much of a test's time is single-threaded
# Python (tracing tf.functions, building models, subprocess start-up), so two workers keep both
# cores busy. GC_TEST_WORKERS=0 runs everything in this one process.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
WORKERS="${GC_TEST_WORKERS:-2}"
PARALLEL=()
if [ "$WORKERS" != "0" ]; then PARALLEL=(-n "$WORKERS" --dist worksteal); fi
exec .venv/bin/python -m pytest -q -p no:cacheprovider --durations=20 "${PARALLEL[@]}" "$@"
