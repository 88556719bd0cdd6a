# One place for the commands a developer and CI run. Everything goes into ./.venv.
#   make install   create .venv and install lssgen (editable) with every extra, test and benchmark tools
#   make demo      the shipped lssgen-mini model, plain and with LSS, on the CPU: times and a PNG grid
#   make test      lint, format check, type check (every package, then benchmarks/), tests
#   make bench     the pytest-benchmark suite (not part of `make test`)
#
# TORCH_SPEC pins torch for every pip call, so nothing can resolve another (on our CPU machines
# torch==2.13.0 is a local CPU wheel; a newer torch would pull several GB of CUDA packages).
# On a GPU machine: make install TORCH_SPEC="torch==2.13.0" with your CUDA index configured.

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
KDIFFUSION_SPEC ?= k-diffusion==0.1.1.post1
BIN := $(VENV)/bin
STAMP := $(VENV)/.lssgen-installed

.PHONY: install demo test lint typecheck pytest bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	echo "$(TORCH_SPEC)" > $(VENV)/torch-constraint.txt
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -c $(VENV)/torch-constraint.txt -e ".[dev]"
	# k-diffusion without its dependencies: they pull torchvision and a CUDA torch (see README).
	$(BIN)/python -m pip install -q --no-deps "$(KDIFFUSION_SPEC)"
	$(BIN)/python -c "import torch; print('torch', torch.__version__)"
	touch $(STAMP)

demo: install
	$(BIN)/lssgen demo --output lssgen-demo.png

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy cannot follow the editable install's import hook to the adapters: it finds them on this
# path, in the folders named as their packages.
MYPY_PATH := $(CURDIR)/adapters/diffusers:$(CURDIR)/adapters/kdiffusion

# benchmarks/ is not a package (its modules import each other by name): checked as files.
typecheck: install
	MYPYPATH=$(MYPY_PATH) $(BIN)/mypy
	MYPYPATH=$(MYPY_PATH) $(BIN)/mypy benchmarks

pytest: install
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

bench: install
	$(BIN)/python -m pytest benchmarks/ --benchmark-only --benchmark-enable

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .benchmarks
