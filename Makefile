# The README's commands. CI calls `make test` too.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
#: Both cores, one test file per worker (module fixtures built once); `make test PYTEST_ARGS=`
#: runs it in one process.
PYTEST_ARGS ?= -n 2 --dist loadfile
#: Test files (tmp_path) on tmpfs where there is one: the suite writes and later deletes
#: thousands of small files (sites, outboxes, stores); on a shared disk that I/O is wait
#: the CPU figures do not show. Only with 2 GB free there (a container's default /dev/shm is
#: 64 MB). `make test TEST_TMPDIR=` keeps the system's temp directory.
TEST_TMPDIR ?= $(shell test -d /dev/shm -a -w /dev/shm && \
	[ "$$(df -Pk /dev/shm | awk 'NR==2 {print $$4}')" -gt 2000000 ] && echo /dev/shm)

#: The suite starts hundreds of Python processes (CLI, workers, benches): let them keep
#: their bytecode. Where the environment sets PYTHONDONTWRITEBYTECODE, each would compile
#: every module it imports again (~5 CPU-s a pytest worker before its first test).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test lint eval bench clean chromium postgres faults cluster-proof cluster-bench

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "error: no python3.11 or python3 on PATH; install Python 3.11" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

# The semantic extra too, so CI runs the semantic layer's tests (they skip without it).
$(DEVSTAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,semantic]'
	@touch $(STAMP) $@

run: $(STAMP)
	$(BIN)/digest run

test: $(DEVSTAMP) chromium postgres
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(if $(TEST_TMPDIR),TMPDIR=$(TEST_TMPDIR) )$(BIN)/python -m pytest -q $(PYTEST_ARGS)
	$(MAKE) --no-print-directory cluster-proof

# Browser tests drive Debian's chromium (no browser download). Installed when missing and
# we are root with apt-get; otherwise those tests skip with a reason.
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium (Debian) for the browser tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
			|| echo "warning: could not install chromium; browser tests will skip"; \
	else echo "note: /usr/bin/chromium missing and not root; browser tests will skip"; fi

# The PostgreSQL store's tests start a throwaway server themselves (tests/pg_cluster.py:
# initdb + pg_ctl in a temp dir, on 127.0.0.1) from Debian's server binaries. Installed when
# missing and we are root with apt-get; otherwise those tests skip with a reason.
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing postgresql (Debian) for the PostgreSQL store tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
			|| echo "warning: could not install postgresql; the PostgreSQL tests will skip"; \
	else echo "note: no PostgreSQL server (initdb) and not root; the PostgreSQL tests will skip"; fi

# The fault-injection suite's long form: 20 seeded rounds of every kind (SIGKILLs, SMTP and
# SendGrid faults, full disk, locked and read-only store), then the counts. `make test`
# runs its short form (tests/test_faults.py).
faults: $(DEVSTAMP)
	$(BIN)/python -m tests.faults --rounds 20

# The workers' proof at the issue's size: 3 worker slots, 5,000 readers, two SIGKILLs
# (~100 s; `make test` runs it after the suite, which leaves it out to stay under two
# minutes on two cores).
cluster-proof: $(DEVSTAMP) postgres
	$(if $(TEST_TMPDIR),TMPDIR=$(TEST_TMPDIR) )$(BIN)/python -m pytest -q -p no:cacheprovider --cluster -m cluster tests/test_workers.py

# Digests a second with 1, 2 and 4 workers on one PostgreSQL (bench/cluster.py).
cluster-bench: $(DEVSTAMP) postgres
	$(BIN)/python bench/cluster.py

lint: $(DEVSTAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

eval: $(DEVSTAMP)
	$(BIN)/python bench/eval.py

bench: $(DEVSTAMP)
	$(BIN)/python bench/rank.py
	$(BIN)/python bench/render.py
	$(BIN)/python bench/publish.py
	$(BIN)/python bench/send.py
	$(BIN)/python bench/import.py
	$(BIN)/python bench/day.py

clean:
	rm -rf $(VENV) var site .pytest_cache
