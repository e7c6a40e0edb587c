# Quick start: `make demo` grades the reference solution and the flawed samples;
# `make test` runs the test suite. Both set up .venv and the NSL-KDD data first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The NSL-KDD folder; fetched and verified here unless ADGRADE_DATA points elsewhere.
ADGRADE_DATA ?= $(CURDIR)/data/nsl-kdd
export ADGRADE_DATA

DEMO_SUBMISSIONS := reference/solution.ipynb student_templates/nslkdd_assessment.ipynb $(wildcard tests/submissions/*.ipynb)

.PHONY: setup data demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

data: setup
	$(BIN)/adgrade data ensure "$(ADGRADE_DATA)"

# Exit status 1 means "graded, but the notebook stopped early", which the flawed samples are meant to do.
demo: data
	@set -e; for notebook in $(DEMO_SUBMISSIONS); do \
		name=$$(basename $$notebook .ipynb); \
		$(BIN)/adgrade grade $$notebook --output out/demo/$$name || test $$? -eq 1; \
	done; \
	$(BIN)/adgrade summary out/demo

test: data
	$(BIN)/python -m pytest

bench: data
	$(BIN)/python benchmarks/grading_overhead.py

clean:
	rm -rf out adgrade-out .pytest_cache
