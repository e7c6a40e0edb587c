# Quick start: `make demo` grades the reference solution and the flawed samples;
# `make test` runs the test suite. Both set up .venv and the NSL-KDD data first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The NSL-KDD folder; fetched and verified here unless ADGRADE_DATA points elsewhere.
ADGRADE_DATA ?= $(CURDIR)/data/nsl-kdd
export ADGRADE_DATA

# The grading image's base: a CUDA runtime image by default; adgrade-base:bookworm is made from
# Debian packages by docker/make-base-image.sh where no registry can be reached.
BASE_IMAGE ?= nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

# A few samples of the corpus in tests/submissions/: common mistakes, tampering, a crash, a legacy edition.
DEMO_SAMPLES := softmax_argmax percentile_threshold scaler_all_rows fake_xgb_acc gan_collapsed \
	patched_accuracy_score os_exit legacy_2020_edition
DEMO_SUBMISSIONS := reference/solution.ipynb student_templates/nslkdd_assessment.ipynb \
	$(patsubst %,tests/submissions/%.ipynb,$(DEMO_SAMPLES))

.PHONY: setup data demo test bench image clean

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

# Build the Docker grading image. With BASE_IMAGE=adgrade-base:bookworm the base is made
# locally first and the course stack is installed from wheels built on this host.
image: setup
ifeq ($(BASE_IMAGE),adgrade-base:bookworm)
	docker image inspect $(BASE_IMAGE) >/dev/null 2>&1 || docker/make-base-image.sh $(BASE_IMAGE)
	$(BIN)/adgrade image build --base-image $(BASE_IMAGE) --wheelhouse
else
	$(BIN)/adgrade image build --base-image $(BASE_IMAGE)
endif

bench: data
	$(BIN)/python benchmarks/grading_overhead.py

clean:
	rm -rf out adgrade-out .pytest_cache
