#!/usr/bin/env bash
# Replaced by the study file studies/bundled.toml (docs/evaluation.md, "The study as a plan"): this is `make results`.
cd "$(dirname "$0")/.." && exec make results
