# Every target sets up .venv on first use, so each one works as the first
# command typed on a fresh clone with only Python 3.11+ and make.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run lab test test-unit test-notebooks bench html clean

run: $(STAMP)
	$(BIN)/python -m labkit run

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m benchmarks

html: $(STAMP)
	$(BIN)/python -m labkit.solutions html

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "labkit needs Python 3.11 or newer; set PYTHON=python3.11" or 0)'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name labkit --display-name "Python (labkit)" > /dev/null
	touch $(STAMP)

clean:
	rm -rf $(VENV) html .pytest_cache
