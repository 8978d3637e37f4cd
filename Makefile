# nnisuite: `make demo` runs the main study; `make test` runs lint and the whole test suite.
# Both create .venv and install the project into it when missing or stale. `make test` also
# installs the system packages some tests need (Debian's Fashion-MNIST, Chromium, sshd) when it
# runs as root with apt-get; otherwise it says which tests will be skipped and how to install.
# In CI (CI=true) a package that cannot be installed fails the run: nothing is skipped there.

PYTHON ?= python3
# pytest's parallel workers (pytest-xdist), handed one test at a time, longest first
# (tests/conftest.py): most tests wait on NNI managers rather than the CPU
PYTEST_WORKERS ?= 4
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.nnisuite-installed

.PHONY: demo test test-quick lint format clean-venv system-packages bytecode mutation

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=23"
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/nnisuite run mlp_tpe_digits --out runs/demo

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

system-packages:
	@missing=""; \
	test -d /usr/share/datasets/fashion-mnist || missing="$$missing dataset-fashion-mnist"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	test -x /usr/sbin/sshd || missing="$$missing openssh-server"; \
	command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing what the tests need:$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; } \
			>/dev/null || { echo "apt-get failed for:$$missing"; \
			if [ "$$CI" = true ]; then echo "CI: the tests needing them must run: failing"; exit 1; fi; \
			echo "note: tests needing$$missing will be skipped"; }; \
	else \
		echo "note: missing$$missing: the Fashion-MNIST / browser / sshd / namespace tests will be skipped;" \
			"to run them: sudo apt-get install -y$$missing"; \
	fi

# The project's bytecode, written once before the tests: each process they start (runners,
# launchers, dispatchers, test workers) would otherwise compile the modules it imports again
# where PYTHONDONTWRITEBYTECODE is set, as on the machine CI runs on (a runner's imports 0.9 ->
# 0.75 s of CPU; a test worker's collection ~3 s less)
bytecode: $(STAMP)
	$(PY) -m compileall -q -x '/(\.venv|\.git|runs|data|mutants|mutants-stage)/' .

test: lint system-packages bytecode
	$(PY) -m pytest -n $(PYTEST_WORKERS) --maxschedchunk 1

test-quick: lint bytecode
	$(PY) -m pytest -n 2 -m "not slow and not integration"

# mutation testing of the modules pyproject's [tool.mutmut] names, in a wheel-layout copy
# (tests/mutation.py says why); MUTANTS="nnisuite.analysis.pareto*" for some of them
mutation: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m tests.mutation $(MUTANTS)

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean-venv:
	rm -rf $(VENV)
