# The two commands a fresh machine needs: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CORPUS ?= ../shared/corpus ../shared/seeds
DEMO_DB ?= demo.db
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install chromium lint typecheck test demo bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned to the CPU build on local disk, so nothing pulls a CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[ml,dev,postgres,ray]'
	touch $@

install: $(VENV)/.installed

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || { echo "error: could not install chromium (browser tests need /usr/bin/chromium)"; exit 1; }; }

lint: install
	$(BIN)/ruff check landscape tests bench

typecheck: install
	$(BIN)/mypy

test: install chromium lint typecheck
	$(BIN)/python -m pytest -q -p no:cacheprovider

demo: install
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm
	$(BIN)/landscape ingest $(CORPUS) --db $(DEMO_DB)
	$(BIN)/landscape build --db $(DEMO_DB)
	$(BIN)/landscape stats --db $(DEMO_DB)
	$(BIN)/landscape serve --host $(HOST) --port $(PORT) --db $(DEMO_DB)

bench: install
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) *.db *.db-wal *.db-shm .pytest_cache .mypy_cache
