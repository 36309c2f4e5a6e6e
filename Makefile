# One entry point for people and CI. Every target installs what it needs first (uv + the locked venv),
# so each works from a fresh clone with nothing but Python 3.11 and the package registries.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup demo test test-ui browser ui serve validate bench bench-training bench-serving gpu-check clean

$(VENV)/.synced: pyproject.toml uv.lock
	@command -v uv >/dev/null || python3 -m pip install --quiet uv
	uv sync --frozen
	@touch $@

# The instance is created once here, under a lock, before any command can open it from parallel processes.
setup: $(VENV)/.synced
	@$(PY) -m btc_platform.config

## The main job: start the vendor sandbox and build the demo window of the whole asset graph.
demo: setup
	$(PY) -m btc_platform.demo $(ARGS)

## The test suite (unit, asset, sensor, webserver and end-to-end tests).
test: setup
	$(PY) -m pytest -n 2 --dist loadfile $(ARGS)

## The browser lane: the UI as `make ui` starts it (temporary instance, lake, ports), driven with clicks
## in headless Chromium; screenshots and the UI's log under test-artifacts/ui/.
test-ui: setup browser
	$(PY) -m pytest -m ui btc_platform_tests/ui $(ARGS)

## Debian's headless Chromium and a font for the browser test, when missing (Playwright drives
## /usr/bin/chromium: no browser download). A no-op once both files are there.
CHROMIUM := /usr/bin/chromium
UI_FONT := /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser: $(CHROMIUM) $(UI_FONT)
$(CHROMIUM) $(UI_FONT) &:
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-dejavu-core \
	  || { $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-dejavu-core; }

## The Dagster UI (webserver + daemon) on the same instance as `make demo`, with the vendor sandbox its
## data came from started and stopped beside it. `make ui LIVE=1`: the vendors' real hosts, on an
## instance and lake of their own under data/live.
LIVE ?=
ui: setup
	$(PY) -m btc_platform.ui $(if $(filter-out 0 no false,$(LIVE)),--live) $(ARGS)

## The champion's model server (FastAPI) on http://127.0.0.1:8000, on the same models and warehouse as the demo.
serve: setup
	$(PY) -m btc_platform.serving $(ARGS)

## Benchmarks print their figures against a named baseline (benchmarks/README.md).
bench: setup
	$(PY) benchmarks/ingest.py $(ARGS)

## Every trainer's throughput on the device it finds (GPU/CPU ratio when CUDA is there).
bench-training: setup
	$(PY) benchmarks/training.py $(ARGS)

## /predict latency and throughput for the XGBoost and LSTM champions, against a direct in-process call.
bench-serving: setup
	$(PY) benchmarks/serving.py $(ARGS)

## Every trainer for a few steps on CUDA, with the device and throughput; fails without a GPU.
gpu-check: setup
	$(PY) benchmarks/training.py --require-cuda --devices both $(ARGS)

validate: setup
	$(VENV)/bin/dagster definitions validate -w workspace.yaml

clean:
	rm -rf data dbt_project/target dbt_project/logs
