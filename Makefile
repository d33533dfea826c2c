# lb-demo: `make demo` runs the lab, `make test` runs every test. Both set up what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: demo test lint system-deps sandbox-deps bench clean

# The virtualenv is created once; the stamps re-install only when a requirements file changes.
$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime-installed: requirements.txt | $(PY)
	$(PIP) install -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(PY)
	$(PIP) install -r requirements-dev.txt
	touch $@ $(VENV)/.runtime-installed

# Debian packages, as command:package pairs: installed with apt-get only when a command is
# missing (and only where possible: root with apt-get). Add a pair to extend the list.
SYSTEM_DEPS := chromium:chromium
# The sandbox's containers: bubblewrap isolates each one; busybox-static and nginx are tutorial images.
SANDBOX_DEPS := bwrap:bubblewrap busybox:busybox-static nginx:nginx
BENCH_DEPS := wrk:wrk hey:hey haproxy:haproxy

# $(call apt_install,PAIRS,WHAT): install the packages of PAIRS whose commands are missing.
define apt_install
@missing=""; for pair in $(1); do command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
if [ -n "$$missing" ]; then \
  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
    echo "Installing Debian's$$missing for $(2) ..."; \
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
  else \
    echo "Debian's$$missing missing and cannot be installed here (need root and apt-get); $(2) will fail"; \
  fi; \
fi
endef

# nginx's package would start its service: a policy-rc.d (as in a container build) prevents it.
sandbox-deps:
	@[ -e /usr/sbin/policy-rc.d ] || [ "$$(id -u)" != 0 ] || { printf '#!/bin/sh\nexit 101\n' \
	  > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && touch $(VENV)/.policy-rc-added; }
	$(call apt_install,$(SANDBOX_DEPS),the sandbox)
	@[ ! -e $(VENV)/.policy-rc-added ] || rm -f /usr/sbin/policy-rc.d $(VENV)/.policy-rc-added

system-deps: sandbox-deps
	$(call apt_install,$(SYSTEM_DEPS),the tests)

demo: $(VENV)/.runtime-installed sandbox-deps
	$(PY) manage.py demo $(if $(KUBECONFIG),--kubeconfig "$(KUBECONFIG)") $(if $(CONTEXT),--context "$(CONTEXT)")

# ruff (style, imports, bug patterns) and mypy (types; configured in pyproject.toml) over the whole tree.
lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The suite mostly waits (pods starting, rollouts, browsers): ~30 % of one core when run serially, so
# it runs in TEST_WORKERS processes, a test file per worker at a time (module fixtures stay whole).
TEST_WORKERS ?= 3
test: $(VENV)/.dev-installed system-deps lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

# Benchmarks print figures; they need Debian's wrk, hey and haproxy for comparisons.
bench: $(VENV)/.dev-installed
	$(call apt_install,$(BENCH_DEPS),the benchmarks)
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) .sandbox .pytest_cache .ruff_cache .mypy_cache test-artifacts
