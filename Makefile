PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: up test lint bench clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

up: $(VENV)/.installed  ## migrate, seed the demo tenant and run every process in the foreground
	$(PY) -m anmei.launcher up

test: $(VENV)/.installed  ## the whole test suite (PYTEST_ARGS="-k foo" to narrow it)
	$(PY) -m anmei.launcher test $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/anmei_bench
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/9

bench: $(VENV)/.installed  ## every bench/ script against a scratch PostgreSQL database and Redis DB 9
	-createdb -h 127.0.0.1 -U postgres anmei_bench 2>/dev/null
	@for script in bench/*.py; do echo "== $$script"; \
	  DATABASE_URL=$(BENCH_DATABASE_URL) REDIS_URL=$(BENCH_REDIS_URL) $(PY) $$script || exit 1; done

clean:
	rm -rf var staticfiles .pytest_cache
