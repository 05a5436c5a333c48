# Thin entry points. Everything installs itself on first use.
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: demo test bench bench-check reliability normal-day setup lint generate clean

setup:
	@scripts/install-system-deps
	@scripts/bootstrap-venv >/dev/null

# REPLICAS=1 runs one worker on its in-memory queue; the default is a fleet of 3 behind nginx.
REPLICAS ?= 3
demo: setup
	ENHANCEMENT_DEMO_REPLICAS=$(REPLICAS) $(PY) -m ops.demo

# Lint, types and the whole suite with line coverage (fails under 90%, see pyproject.toml).
test: setup lint
	$(PY) -m pytest --cov

bench: setup
	$(PY) -m bench.run_all

# Fresh figures against the committed baseline; non-zero when any figure regressed.
bench-check: bench
	$(PY) -m bench.check

# Faults, soak and saturation (about 25 minutes). The fault suite is also part of `make test`;
# here it prints each fault's detection time and writes them to bench/results/faults.json.
reliability: setup
	@mkdir -p bench/results
	RELIABILITY_REPORT=bench/results/faults.json $(PY) -m pytest -s -p no:cacheprovider tests/integration/test_live_stack.py
	$(PY) -m bench.soak --json bench/results/soak.json

# A normal day (40 minutes) against the local stack: passes when no warning or critical alert fires.
normal-day: setup
	@mkdir -p bench/results
	$(PY) -m bench.normal_day --json bench/results/normal_day.json

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) scripts/lock_runtime.py --check

# Rewrites the generated monitoring files and Kubernetes resources from their sources and ops/monitoring.py.
generate: setup
	$(PY) deploy/prometheus/generate.py
	$(PY) deploy/grafana/dashboards.py
	$(PY) deploy/kubernetes/generate.py

clean:
	rm -rf demo-output .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*
