# fter-tvm: `make demo` and `make test` each work from nothing (venv, pip, apt as needed).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.fter-installed
# valgrind: tests/test_sanitize.py runs one host-sim program under it
XTENSA_TOOLS := xtensa-lx106-elf-gcc qemu-system-xtensa valgrind
XTENSA_PKGS  := gcc-xtensa-lx106 binutils-xtensa-lx106 qemu-system-misc valgrind

.PHONY: demo test test-slow tools clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

# Xtensa cross compiler + simulator and valgrind: installed from apt when root; a hard error under CI=true
tools:
	@missing=""; for t in $(XTENSA_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ]; then \
		echo "installing$$missing from apt ($(XTENSA_PKGS))"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(XTENSA_PKGS) >/dev/null; \
		missing=""; for t in $(XTENSA_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	fi; \
	if [ -n "$$missing" ]; then \
		if [ "$${CI:-}" = true ]; then echo "error: missing$$missing (apt: $(XTENSA_PKGS))" >&2; exit 1; fi; \
		echo "note: missing$$missing — tests marked 'xtensa' (or the valgrind test) will be skipped (install: apt-get install $(XTENSA_PKGS))"; \
	fi

# Two tiers: `make test` is everything but the tests marked `slow` (aim: <= 20 min on 2 cores);
# `make test-slow` runs those (timm-sized models, the long property run). CI (.ci/run) runs both.
# Both print their 25 slowest tests.
test: $(STAMP) tools
	@$(PY) -m pytest -q -ra -m "not slow" --durations=25; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-slow: $(STAMP) tools
	@$(PY) -m pytest -q -ra -m slow --durations=25; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

demo: $(STAMP) tools
	$(VENV)/bin/fter-tvm demo

clean:
	rm -rf $(VENV) build *.egg-info
