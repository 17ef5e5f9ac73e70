# Two commands for a new user:  `make book` builds the HTML book, `make test` runs every test.
# Both create .venv if it is missing and install the pinned dependencies into it.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PROFILE ?= default

.PHONY: venv test book clean

$(STAMP): pyproject.toml requirements-lock.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements-lock.txt -e ".[book,test]"
	@touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

book: $(STAMP)
	$(PY) book/build.py --profile $(PROFILE)

clean:
	rm -rf _build book/chapters book/_static/mathjax .pytest_cache
