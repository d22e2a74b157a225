# The two set-up commands: `make demo` and `make test`. Both create .venv when needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXAMPLE := examples/retail_lakehouse
# Test files run in parallel, each file whole in one worker (its module fixtures start once).
# Three workers on two cores: many tests wait on servers and subprocesses they start.
TEST_WORKERS ?= 3

# Debian packages the tests run as real servers (each package installs a command of its name).
SYSTEM_PACKAGES := prometheus prometheus-pushgateway chromium

.PHONY: demo test lint bench clean system-packages

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || (echo "Lagoa needs Python 3.11: install it (e.g. apt-get install python3.11) or run make PYTHON=/path/to/python3.11" && exit 1)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	@test -f $(EXAMPLE)/samples/erp_orders.csv || $(BIN)/python $(EXAMPLE)/generate.py --out $(EXAMPLE)/samples
	cd $(EXAMPLE) && ../../$(BIN)/lagoa graph daily
	cd $(EXAMPLE) && ../../$(BIN)/lagoa run daily --start 2024-06-01 --end 2024-07-01
	cd $(EXAMPLE) && ../../$(BIN)/lagoa tables
	cd $(EXAMPLE) && ../../$(BIN)/lagoa query "select 'silver.erp_orders' as table_name, count(*) as row_count from silver.erp_orders union all select 'silver.erp_orders__quarantine', count(*) from silver.erp_orders__quarantine"
	cd $(EXAMPLE) && ../../$(BIN)/lagoa query "select split_part(_lagoa_reason, ':', 1) as reason, count(*) as rows from silver.erp_orders__quarantine group by 1 order by 2 desc"
	cd $(EXAMPLE) && ../../$(BIN)/lagoa query "select store_id, sum(orders) as orders, round(sum(revenue), 2) as revenue, round(avg(conversion_rate), 3) as conversion, arg_max(top_category, revenue) as best_day_category from gold.fct_daily_store_metrics group by 1 order by revenue desc limit 5"

# Installs what is missing when run as root on Debian; otherwise says which command to run.
system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q --no-install-recommends $$missing >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $$missing >/dev/null; }; \
	  else \
	    echo "the tests need Debian packages:$$missing; install them with: sudo apt-get install$$missing" >&2; exit 1; \
	  fi; \
	fi

test: $(STAMP) system-packages
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo

bench: $(STAMP)
	$(BIN)/python benchmarks/all.py
	$(BIN)/python benchmarks/orchestrate.py
	$(BIN)/python benchmarks/http_ingest.py
	$(BIN)/python benchmarks/postgres_snapshot.py
	$(BIN)/python benchmarks/postgres_cdc.py
	$(BIN)/python benchmarks/airflow.py
	$(BIN)/python benchmarks/s3_ingest.py
	$(BIN)/python benchmarks/observe.py
	$(BIN)/python benchmarks/serve.py

clean:
	rm -rf $(VENV) $(EXAMPLE)/.lagoa benchmarks/.data
