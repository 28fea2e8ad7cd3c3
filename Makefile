# Two entry points do all the set-up on a fresh machine:  make run  |  make test
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8888

.PHONY: run test test-fast bench browser-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

# Debian's Chromium for the real-browser tests (Playwright's own browser download is not reachable).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q chromium; \
	  else sudo apt-get update -q && sudo apt-get install -y -q chromium; fi; }

run: $(STAMP)
	$(VENV)/bin/jupyter lab --ip=127.0.0.1 --port=$(PORT) $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/00_tour.ipynb

# Unit tests and every notebook (nbval, lax mode, CI parameters) on two pytest-xdist workers, each file on one
# worker; alongside them the real-browser tests, one at a time (each drives its own JupyterLab or Voila server,
# mostly waiting on it), their report printed after the unit tests'. JAX's persistent compilation cache in .jax_cache
# is shared by the workers, the notebooks' and the browser's kernels, which compile many of the same programs; its
# size bound turns on its file lock (concurrent writers).
CI_ENV := WORKBENCH_CI=1 JAX_COMPILATION_CACHE_DIR=$(CURDIR)/.jax_cache JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 \
	JAX_COMPILATION_CACHE_MAX_SIZE=4000000000
test: $(STAMP) browser-deps
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/pyright
	@mkdir -p artifacts; \
	$(CI_ENV) $(PY) -m pytest -q --timeout=900 --durations=5 -m browser tests > artifacts/browser-tests.log 2>&1 & \
	browser=$$!; trap 'kill $$browser 2>/dev/null' INT TERM; \
	$(CI_ENV) $(PY) -m pytest -q -n 2 --dist loadfile --timeout=900 --durations=15 --nbval-lax -m "not browser" \
	  tests notebooks; unit=$$?; \
	wait $$browser; web=$$?; \
	echo "==== real-browser tests (ran alongside) ===="; cat artifacts/browser-tests.log; \
	echo "unit tests and notebooks: exit $$unit; real-browser tests: exit $$web"; \
	exit $$(( unit || web ))

test-fast: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not browser" tests

bench: $(STAMP)
	$(PY) -m benchmarks.run_all

clean:
	rm -rf $(VENV) .pytest_cache artifacts .jax_cache
