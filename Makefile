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

# $(call apt_available,<found test>,<Debian package>,<name>,<what needs it>): nothing when found;
# else apt-get install when we are root and have apt-get; else a note (those tests are skipped).
define apt_available
	@if $(1); then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing $(3) (apt-get) for $(4) ..."; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $(2); } >/dev/null \
			|| echo "note: could not install $(3); $(4) will be skipped."; \
	else \
		echo "note: $(3) not found and not installable here (needs root and apt-get); $(4) will be skipped."; \
	fi
endef

## PostgreSQL binaries for the SQL event source tests (tests/pg.py starts a throwaway server).
postgres-available:
	$(call apt_available,command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1,postgresql,PostgreSQL,the SQL event source tests)

## Headless Chromium for the report screenshots (tests/reporting/test_screenshots.py).
chromium-available:
	$(call apt_available,command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1,chromium,Chromium,the report screenshot tests)

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
