# Two entry points from a fresh clone: `make demo` (the main job) and `make test`.
# Both install what they need into .venv with uv (installed with pip when missing).
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")

.PHONY: install demo test lint image bench

install:
	@command -v uv >/dev/null 2>&1 || test -x "$(UV)" || python3 -m pip install --quiet --user uv
	@$(UV) sync --frozen --quiet

AGENTS ?= 5
DEMO_FLAGS ?=

demo: install
	@$(UV) run fleet demo --agents $(AGENTS) $(DEMO_FLAGS)

lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .

# Independent tests run on three workers (each has its own instance, port and state dir);
# the one that restarts the Docker engine runs alone afterwards. The tests start hundreds
# of Python processes (daemons, CLIs, sandboxes): with PYTHONDONTWRITEBYTECODE set, as on
# our CI machines, each compiled every module it imports again (importing the daemon took
# 4.2 s of CPU instead of 2.5 s), so the tests keep what they compile.
test: export PYTHONDONTWRITEBYTECODE =
test: lint
	$(UV) run pytest -n 3 --dist loadgroup -m "not serial"
	$(UV) run pytest -m serial

image: install
	bash scripts/make-base-image.sh agent-fleet-base:bookworm
	$(UV) run fleet image build --base-image agent-fleet-base:bookworm
	$(UV) run fleet image build --target orchestrator --base-image agent-fleet-base:bookworm

bench: install
	$(UV) run python -m bench
