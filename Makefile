# The README's two commands: `make demo` and `make test`. Each sets up the
# virtual environment from the pinned constraints first (quietly, and only
# when pyproject.toml or constraints.txt changed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint catalogs clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,postgres]'
	touch $(STAMP)

setup: $(STAMP) catalogs

# The translations: compiled from locales/*/LC_MESSAGES/youhu.po (the .mo files
# are build output, not committed). See the README's "Translations".
catalogs: $(STAMP)
	$(BIN)/pybabel -q compile -d locales -D youhu

demo: setup
	$(BIN)/youhu demo

test: setup
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy bot handlers workflows models tests

clean:
	rm -rf $(VENV) build *.egg-info
