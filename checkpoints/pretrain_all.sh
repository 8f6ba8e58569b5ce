#!/usr/bin/env bash
# Replaced by studies/bundled.toml: the study's pretraining tasks (official split and rotations, committed reused).
cd "$(dirname "$0")/.." && exec "${PY:-.venv/bin/python}" -m aclecg study run studies/bundled.toml --only pretrain "$@"
