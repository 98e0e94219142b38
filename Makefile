# Two entry points on a fresh machine: `make demo` and `make test`.
# Both create .venv when missing, install cifarlab into it, then run.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Local wheels on the development machine; any torch>=2.4 works (see pyproject.toml).
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
# Use the shared data folder beside the checkout when there is one, so nothing needs the network.
SHARED_DATA := $(abspath ../shared/data)
export CIFARLAB_DATA ?= $(if $(wildcard $(SHARED_DATA)/cifar10.zip),$(SHARED_DATA),)

.PHONY: install demo test bench docs docs-serve clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/cifarlab train configs/quick.yaml

# Two test processes of one thread each: most tests train tiny models, where one thread per
# process beats two threads in one process (and two trainings that each take every core slow
# down about 20x).
test: install
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 tests --ignore=tests/gpu

bench: install
	$(PY) bench/pipeline.py

# The documentation site in site/; --strict makes a broken link, a page missing from the nav or a bad
# API reference an error. The reference pages are made from the code by docs/gen_reference.py.
docs: install
	$(VENV)/bin/mkdocs build --strict

docs-serve: install
	$(VENV)/bin/mkdocs serve

clean:
	rm -rf $(VENV) runs .pytest_cache
