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

# Debian packages the sandbox's containers need: bubblewrap isolates every container; busybox-static
# and nginx are the tutorial images. Installed only when missing and possible; nginx's service is
# never started by the install (a policy-rc.d stops it, as in a container build).
sandbox-deps:
	@missing=""; command -v bwrap >/dev/null 2>&1 || missing="$$missing bubblewrap"; \
	[ -x /bin/busybox ] || missing="$$missing busybox-static"; \
	[ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's$$missing for the sandbox ..."; \
	    if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; \
	      chmod 755 /usr/sbin/policy-rc.d; added=1; fi; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	    status=$$?; [ -n "$$added" ] && rm -f /usr/sbin/policy-rc.d; exit $$status; \
	  else \
	    echo "missing Debian packages:$$missing (need root and apt-get to install them); the sandbox needs bubblewrap"; \
	  fi; \
	fi

# Debian packages the browser tests need (chromium); installed only when missing and possible.
system-deps: sandbox-deps
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's chromium for the browser tests ..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium is missing and cannot be installed here (need root and apt-get); browser tests will fail"; \
	  fi; \
	fi

demo: $(VENV)/.runtime-installed sandbox-deps
	$(PY) manage.py demo $(if $(KUBECONFIG),--kubeconfig "$(KUBECONFIG)") $(if $(CONTEXT),--context "$(CONTEXT)")

# ruff (style, imports, bug patterns) and mypy (types; configured in pyproject.toml) over the whole tree.
lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: $(VENV)/.dev-installed system-deps lint
	$(PY) -m pytest

# Benchmarks print figures; they need Debian's wrk, hey and haproxy for comparisons.
bench: $(VENV)/.dev-installed
	@for tool in wrk hey haproxy; do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; fi
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) .sandbox .pytest_cache .ruff_cache test-artifacts
