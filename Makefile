# Thin entry points. Everything installs itself on first use.
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: demo test bench bench-check setup lint clean

setup:
	@scripts/install-system-deps
	@scripts/bootstrap-venv >/dev/null

demo: setup
	$(PY) -m exporter.demo

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) -m bench.run_all

# Fresh figures against the committed baseline; non-zero when any figure regressed.
bench-check: bench
	$(PY) -m bench.check

lint: setup
	$(PY) -m compileall -q enhancement exporter tests

clean:
	rm -rf demo-output .pytest_cache
