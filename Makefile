# Every target creates and uses .venv itself: a fresh machine needs only python3.11, pip and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SPARK_STAMP := $(VENV)/.installed-spark
DEMO := demo-output
SCRIPTS = $(wildcard examples/*.py benchmarks/*.py)

.PHONY: demo test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The Spark engine's extra: the lint (mypy reads its types) and the tests need it.
$(SPARK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	touch $(SPARK_STAMP)

lint: $(SPARK_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(if $(SCRIPTS),$(BIN)/mypy $(SCRIPTS))

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/pytest

demo: $(STAMP)
	@bash examples/demo.sh $(BIN) $(DEMO)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_ingest.py --events 20000000 --repeat 3
	$(BIN)/python benchmarks/bench_score.py --events 20000000 --repeat 3
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/bench_compare.py --from ingested --events 20000000 --repeat 3
	$(BIN)/python benchmarks/bench_compare.py --from raw --events 20000000 --repeat 3

clean:
	rm -rf $(VENV) $(DEMO) .mypy_cache .ruff_cache .pytest_cache
