#!/usr/bin/env bash
# Quick start 1: set up .venv, then run the demo on the bundled sample clip.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
exec .venv/bin/gan-compress demo "$@"
