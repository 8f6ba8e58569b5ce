# ACL-ECG Studio. The two commands a newcomer needs:
#   make app    set up (first time) and start the Streamlit app on the bundled real data
#   make test   set up (first time) and run the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8501

.PHONY: app lint test test-slow test-browser test-gpu test-all bench results bundled install clean-cache help

help:
	@echo "make app          set up and start the app on bundled data (http://localhost:$(PORT))"
	@echo "make test         set up and run the default (fast) test suite"
	@echo "make lint         ruff (lint + format check) and mypy on aclecg/"
	@echo "make test-slow    also run the slow tests (real training, resume, two-process DDP)"
	@echo "make test-browser end-to-end tests in headless Chromium (installs chromium with apt if missing)"
	@echo "make test-gpu     on a CUDA machine: GPU tests, pretraining/encoder throughput, one summary (skips without CUDA)"
	@echo "make bench        run every speed benchmark (see benchmarks/README.md)"
	@echo "make results     pretrain the shipped checkpoints, run the sweeps, write docs/results.md"

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall only when requirements.txt or pyproject.toml changes. torch is pinned to the CPU wheel that lies on
# disk here. The package itself is installed editable (no dependencies: requirements.txt has them pinned).
$(STAMP): requirements.txt pyproject.toml | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

bundled: $(STAMP)
	$(PY) -m aclecg bundled

# The 2-D maps of the shipped checkpoints on the bundled PTB-XL data are computed once, so the Representations
# page opens on a warm cache.
SHIPPED := $(wildcard checkpoints/*/encoder.pt)
MAPS    := $(patsubst checkpoints/%/encoder.pt,.cache/umap/shipped-%.csv,$(SHIPPED))

.cache/umap/shipped-%.csv: checkpoints/%/encoder.pt | $(STAMP)
	$(PY) -m aclecg umap --checkpoint $< --data .cache/prepared/ptbxl --out $@

# The default checkpoint's umap-learn map too, so switching the page's method waits for no numba compile.
UMAP_LEARN_MAP := .cache/umap/shipped-acl_ecg-umap-learn.csv
$(UMAP_LEARN_MAP): checkpoints/acl_ecg/encoder.pt | $(STAMP)
	$(PY) -m aclecg umap --checkpoint $< --data .cache/prepared/ptbxl --out $@ --method umap-learn

# The default checkpoint's linear probe (superdiagnostic), so the Explorer's first "Explain by region" fits nothing.
PROBE_STAMP := .cache/embeddings/.probe-acl_ecg-superdiagnostic
$(PROBE_STAMP): checkpoints/acl_ecg/encoder.pt | $(STAMP)
	$(PY) -m aclecg attribute --checkpoint $< --data .cache/prepared/ptbxl --fit-probe
	touch $@

# The default checkpoint's lead features of the Lead regions page's first sample (128 PTB-XL records, seed 0),
# cached beside the embeddings, so the page's first visit encodes nothing.
REGIONS_STAMP := .cache/embeddings/.regions-acl_ecg-ptbxl
$(REGIONS_STAMP): checkpoints/acl_ecg/encoder.pt | $(STAMP)
	$(PY) -m aclecg regions --checkpoint $< --data .cache/prepared/ptbxl >/dev/null
	touch $@

app: bundled $(MAPS) $(UMAP_LEARN_MAP) $(PROBE_STAMP) $(REGIONS_STAMP)
	$(PY) -m aclecg app --port $(PORT) $(APP_FLAGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check aclecg pages app.py tests benchmarks
	$(VENV)/bin/ruff format --check aclecg pages app.py tests benchmarks
	$(VENV)/bin/mypy

# pytest exits 5 when it collects no test (e.g. a marker with no tests yet): not a failure.
PYTEST = rc=0; $(PY) -m pytest $(1) || rc=$$?; [ $$rc -eq 5 ] && exit 0; exit $$rc

# The suites read the bundled data prepared in .cache/ (the app's cache, once per checkout: about 12 s, then 1 s).
test: bundled
	@$(call PYTEST,)

test-slow: bundled
	@$(call PYTEST,-m slow)

test-browser: bundled
	@command -v chromium >/dev/null || (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	  || echo "chromium not installed: browser tests will be skipped")
	@$(call PYTEST,-m browser)

# On a machine with CUDA: the GPU tests, 200 steps of AMP pretraining and encoder throughput, printed as one
# summary block (benchmarks/gpu_check.py). Without CUDA it says so and succeeds.
test-gpu: bundled
	$(PY) benchmarks/gpu_check.py

test-all: test test-slow test-browser

# The study of docs/results.md, declared in studies/bundled.toml: finished tasks are skipped, so an interrupted
# run continues where it stopped (`aclecg study plan studies/bundled.toml` says what is left and how long it takes).
results: bundled
	$(PY) -m aclecg study run studies/bundled.toml
	$(PY) -m aclecg study report studies/bundled.toml --out docs/results.md --export docs/results/sweeps \
	    --readme README.md --cards checkpoints
	$(PY) -m aclecg study ship --sweeps docs/results/sweeps

bench: bundled
	$(PY) benchmarks/run_all.py

clean-cache:
	rm -rf .cache
