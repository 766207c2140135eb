# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv and install the project into it first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
PYTEST_ARGS ?=
# the suite runs on every core, whole test files per worker (they share compiled models)
TEST_WORKERS ?= auto

.PHONY: venv demo test bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	# the distribution was called "modelfit" before 0.2 (a name taken on the package index)
	$(PIP) uninstall -y modelfit 2>/dev/null || true
	# torch first, the CPU build pinned in constraints.txt (sbi would otherwise pull a CUDA build)
	$(PIP) install -c constraints.txt torch
	$(PIP) install -c constraints.txt -e ".[test,all]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/modelfit demo --output output/demo

# the suite includes the architecture (lint-imports: tests/test_architecture.py) and the
# type checker (pyright: tests/test_types.py), each run once
test: $(STAMP)
	@# the dashboard's browser tests need Chromium: say so before they are skipped
	@command -v chromium >/dev/null 2>&1 || command -v "$$MODELFIT_CHROMIUM" >/dev/null 2>&1 \
		&& echo "browser tests: $$(command -v chromium || echo $$MODELFIT_CHROMIUM)" \
		|| echo "NO BROWSER: no Chromium found, tests/test_dashboard_browser.py is skipped (fails in CI); install it with: apt-get install chromium"
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/hh_tutorial.py

clean:
	rm -rf $(VENV) output .pytest_cache .hypothesis *.egg-info
