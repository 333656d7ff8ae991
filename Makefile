# Two commands do all the set-up: `make run` and `make test`. Both go through `make setup`,
# which installs only what is missing and takes a few seconds when nothing is.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# Debian packages: cairo headers and pkg-config to build pycairo; the introspection headers
# and Pango's typelib for PyGObject, through which the pictures draw text; the fonts they draw
# with (DejaVu, and Noto for other scripts, CJK and colour emoji, about 80 MB); nginx with its
# njs module for `make cluster` (install-system-packages adds python3-venv where it is
# missing). The browser tests also need chromium, and the terminal tests curl, which only
# `make test` installs.
DEB_PACKAGES := libcairo2-dev pkg-config fonts-dejavu-core libgirepository1.0-dev gir1.2-pango-1.0 \
	fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji nginx libnginx-mod-http-js
TEST_DEB_PACKAGES := chromium curl

.PHONY: setup system-packages test-system-packages run cluster test lint bench bench-setup \
	stress clean

setup: system-packages $(VENV)/.installed

system-packages:
	@./tools/install-system-packages $(DEB_PACKAGES)

test-system-packages:
	@./tools/install-system-packages $(TEST_DEB_PACKAGES)

$(VENV)/.installed: setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,pango]'
	@touch $@

run: setup
	@echo "Serving the demo job at http://$(HOST):$(PORT)/progress/show?jobid=demo1"
	$(PY) -m tornado_progress --host $(HOST) --port $(PORT) --demo

# N backends on free local ports behind a foreground nginx on PORT, every file of theirs in
# cluster/ (see deploy/README.md). Ctrl-C stops them all, each backend writing its snapshot.
BACKENDS ?= 2

cluster: setup
	$(PY) -m tools.cluster --backends $(BACKENDS) --host $(HOST) --port $(PORT)

lint: setup
	$(VENV)/bin/ruff check tornado_progress tests bench tools
	$(VENV)/bin/mypy

test: setup test-system-packages lint
	$(PY) -m pytest

# The benchmark's peers stay out of the project's virtualenv: Debian's wrk and Prometheus
# Pushgateway, and Progressista in a virtualenv of its own under bench/ (ignored by git).
BENCH_DEB_PACKAGES := wrk prometheus-pushgateway
PEER_VENV := bench/.venv-progressista

bench-setup: setup
	@./tools/install-system-packages $(BENCH_DEB_PACKAGES)
	@test -x $(PEER_VENV)/bin/progressista || { $(PYTHON) -m venv $(PEER_VENV) && \
		$(PEER_VENV)/bin/python -m pip install --quiet progressista; }

bench: bench-setup
	$(PY) -m bench

# Crashes, a churn soak, connection attacks, damaged snapshot folders and memory attacks against
# the real server: about half an hour at full size, not part of `make test`. A few minutes with
# `make stress STRESS_ARGS=--quick`. The table goes to stdout, the figures to
# bench/results-stress.json.
STRESS_ARGS ?=

stress: setup
	$(PY) -m bench.stress $(STRESS_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
