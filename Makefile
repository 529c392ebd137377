# Every target sets up .venv on first use, so each one works as the first
# command typed on a fresh clone with only Python 3.11+ and make.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Notebooks run two at a time, each cell under a 60 s timeout; --durations=0
# prints each notebook's run time.
NBMAKE := $(BIN)/python -m pytest -n 2 --nbmake --nbmake-timeout=60 --durations=0

.PHONY: run lab test test-unit test-notebooks bench html clean

run: $(STAMP)
	$(BIN)/python -m labkit run

# Jupyter refuses to run as root unless told; containers and CI often are root.
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

test: test-unit test-notebooks

test-unit: $(STAMP)
	$(BIN)/python -m pytest -n 2

# Every notebook twice. As shipped, each exercise check must say "not attempted
# yet"; solved (labkit.solutions fills in notebooks/solutions/*.py), each must
# say "passed". The solved run keeps its outputs, so the last step can check
# that every plot cell embedded a PNG (MPLBACKEND is left alone on purpose).
test-notebooks: $(STAMP)
	LABKIT_EXPECT=not-attempted $(NBMAKE) notebooks/*.ipynb
	$(BIN)/python -m labkit.solutions solve
	LABKIT_EXPECT=passed $(NBMAKE) --overwrite build/solved/*.ipynb
	$(BIN)/python -m labkit.solutions verify build/solved

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
	rm -rf $(VENV) html .pytest_cache .hypothesis build/solved
