# Two commands on a fresh machine: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench install clean postgres-available chromium-available

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

## Run go-live against the embedded sandbox and receiver; prints the report directory.
demo: $(STAMP)
	$(BIN)/runbook demo

## PostgreSQL binaries for the SQL event source tests (tests/pg.py starts a throwaway server).
## Installed with apt-get when missing and we are root; otherwise those tests are skipped.
postgres-available:
	@if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing PostgreSQL (apt-get) for the SQL event source tests ..."; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends postgresql; } >/dev/null \
			|| echo "note: could not install PostgreSQL; the SQL event source tests will be skipped."; \
	else \
		echo "note: PostgreSQL (initdb) not found and not installable here (needs root and apt-get);" \
			"the SQL event source tests will be skipped."; \
	fi

## Headless Chromium for the report screenshots (tests/reporting/test_screenshots.py).
## Installed with apt-get when missing and we are root; otherwise those tests are skipped.
chromium-available:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Chromium (apt-get) for the report screenshot tests ..."; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends chromium; } >/dev/null \
			|| echo "note: could not install Chromium; the report screenshot tests will be skipped."; \
	else \
		echo "note: Chromium not found and not installable here (needs root and apt-get);" \
			"the report screenshot tests will be skipped."; \
	fi

## The whole test suite (unit, live sandbox, receiver, notebooks under papermill).
test: $(STAMP) postgres-available chromium-available
	$(BIN)/ruff check runbook_lib tests benchmarks
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check runbook_lib tests benchmarks
	$(BIN)/ruff format --check runbook_lib tests benchmarks

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
