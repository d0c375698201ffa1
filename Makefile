# Two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
export BOOKINGS_SOURCE ?= $(if $(wildcard ../shared/data/hotel_bookings.csv.zip),$(abspath ../shared/data/hotel_bookings.csv.zip),)
export BOOKING_PLATFORM_HOME ?= $(abspath data)

.PHONY: venv run test dev lint benchmark docs-images serve cluster cluster-down

# Bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set (as on these machines),
# every process would otherwise compile Dagster, MLflow and Evidently from source on import, which
# cost the main job 12 s of its run (measured with cProfile).
$(BIN)/booking-platform: pyproject.toml uv.lock
	@if command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv; then \
		uv sync --frozen --compile-bytecode; \
	else \
		python3 -m venv $(VENV) && $(BIN)/pip install --quiet -r requirements.lock -e . \
			&& $(BIN)/python -m compileall -q $(VENV)/lib; \
	fi
	@touch $@

venv: $(BIN)/booking-platform

run: venv
	$(BIN)/booking-platform run

# The browser test drives Debian's chromium (never a downloaded browser); install it if missing.
test: venv
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && apt-get update && apt-get install -y chromium; } \
		|| echo "chromium could not be installed: the browser test will be skipped"
	$(BIN)/pytest

# `dg check defs` loads the Definitions as Dagit does (a fresh instance, outside the data home)
lint: venv
	$(BIN)/ruff check booking_platform booking_platform_tests benchmarks
	@test -x $(BIN)/dg || { echo "dg missing: dagster-dg-cli belongs in the dev group" >&2; exit 1; }
	home=$$(mktemp -d) && VIRTUAL_ENV=$(abspath $(VENV)) DAGSTER_HOME=$$home \
		BOOKING_PLATFORM_HOME=$$home $(BIN)/dg check defs; status=$$?; rm -rf $$home; exit $$status

serve: venv
	$(BIN)/booking-platform serve --host 127.0.0.1 --port 8000

# The cluster profile (README, "Running at scale"): PostgreSQL, Celery workers on RabbitMQ, an
# MLflow server; every process in the background, PIDs and logs under $BOOKING_PLATFORM_HOME/cluster/.
cluster: venv
	BOOKING_PLATFORM_PROFILE=cluster $(BIN)/booking-platform cluster up
	BOOKING_PLATFORM_PROFILE=cluster $(BIN)/booking-platform run

cluster-down: venv
	$(BIN)/booking-platform cluster down

dev: venv
	$(BIN)/python -m booking_platform.dev --host 127.0.0.1 --port 3000

benchmark: venv
	$(BIN)/python benchmarks/seed_model_comparison.py
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/sensor_ticks.py

docs-images: venv
	$(BIN)/python docs/make_images.py
