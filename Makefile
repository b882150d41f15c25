# cra-book: the two commands of the README are `make book` and `make test`.
# Both create .venv on first use and install the exact CPU set of requirements/cpu-constraints.txt.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONSTRAINTS := requirements/cpu-constraints.txt

# Real NExT-GQA annotations: honour CRA_DATA_DIR, else use ../shared/data when it exists (CI).
CRA_DATA_DIR ?= $(shell [ -d ../shared/data ] && cd ../shared/data && pwd)
export CRA_DATA_DIR

NBTEST_DIR := .nbtest
NB_TIMEOUT ?= 900

.PHONY: setup book chapter-times test test-unit test-notebooks vendor-js clean

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=23"
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[all]"
	touch $@

setup: $(VENV)/.installed

vendor-js: setup
	$(BIN)/python scripts/vendor_js.py book/_vendor

# The rendered book, every chapter executed (results cached in _build/.jupyter_cache).
book: vendor-js
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going
	$(BIN)/python scripts/check_book.py _build/html

# After `make book`: each chapter's execution time from the build's notebook cache, for the course page.
chapter-times: setup
	$(BIN)/python scripts/chapter_times.py _build/.jupyter_cache book/_data/chapter_times.csv

# The whole test suite: lint, unit tests, then every chapter executed by nbmake.
test: lint test-unit test-notebooks

# ruff (pyproject.toml [tool.ruff]): pyflakes, pycodestyle at 120 columns, import order.
lint: setup
	$(BIN)/ruff check cra tests benchmarks scripts

# The quick inner loop while editing: everything but the slow tests (CI runs them all).
test-quick: setup
	$(BIN)/python -m pytest -m "not slow" tests

test-unit: setup
	$(BIN)/python -m pytest tests

test-notebooks: setup
	rm -rf $(NBTEST_DIR)
	$(BIN)/python scripts/export_notebooks.py $(NBTEST_DIR)
	$(BIN)/python -m pytest --nbmake --nbmake-timeout=$(NB_TIMEOUT) -p no:cacheprovider $(NBTEST_DIR)

clean:
	rm -rf _build $(NBTEST_DIR) book/_vendor
