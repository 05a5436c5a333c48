# Thin entry points. Everything installs itself on first use.
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: demo test setup lint clean

setup:
	@scripts/install-system-deps
	@scripts/bootstrap-venv >/dev/null

demo: setup
	$(PY) -m exporter.demo

test: setup
	$(PY) -m pytest

lint: setup
	$(PY) -m compileall -q enhancement exporter tests

clean:
	rm -rf demo-output .pytest_cache
