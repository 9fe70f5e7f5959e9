# Portail PVD: `make run` serves the demo, `make test` runs the whole suite.
# Each target creates .venv when it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
REFERENCE_DATA_DIR ?= ../shared/pvd-reference-data
# The libraries WeasyPrint needs on Debian (https://doc.courtbouillon.org/weasyprint/stable/first_steps.html).
DEBIAN_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0

.PHONY: run test lint format check-demo check-html check-html-files check-system bench bench-import \
	bench-beneficiaires bench-pdf bench-actions-data bench-plan bench-actions-export bench-pages \
	bench-rappels bench-dashboards bench-reference-imports bench-excel-import bench-instances bench-club bench-api bench-memory clean

check-system:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 ou plus récent est nécessaire."; exit 1; }
	@$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -c 'import ensurepip' 2>/dev/null || \
		{ echo "Le module venv manque : sudo apt-get install python3-venv"; exit 1; }
	@missing=""; for lib in libpango-1.0.so.0 libpangoft2-1.0.so.0 libharfbuzz-subset.so.0; do \
		/sbin/ldconfig -p 2>/dev/null | grep -q "$$lib" || missing="$$missing $$lib"; done; \
	if [ -n "$$missing" ]; then \
		echo "Bibliothèques manquantes pour WeasyPrint :$$missing"; \
		echo "Installez-les : sudo apt-get install $(DEBIAN_PACKAGES)"; exit 1; fi

$(VENV)/.installed: pyproject.toml | check-system
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	@export DEBUG=$${DEBUG:-true}; \
	$(MANAGE) migrate --no-input && \
	if [ -d "$(REFERENCE_DATA_DIR)" ] && [ -z "$$SKIP_REFERENCE_IMPORT" ]; then \
		$(MANAGE) seed_demo --reference-data "$(REFERENCE_DATA_DIR)"; \
	else \
		$(MANAGE) seed_demo; \
	fi && \
	echo "" && echo "Portail PVD : http://127.0.0.1:8000" && \
	$(MANAGE) runserver 127.0.0.1:8000

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/djlint templates --lint

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Test-only tools from npm (package.json): axe-core for the accessibility sweep, the Nu HTML
# Checker (vnu.jar, run with Debian's default-jre-headless) for check-html.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

# The whole suite; the accessibility sweep saves the HTML of every page it visits in
# $(HTML_DIR), which the Nu HTML Checker then reads.
HTML_DIR := build/html
test: $(VENV)/.installed node_modules/.installed lint
	DEBUG=false SECRET_KEY=makemigrations-check-only $(MANAGE) makemigrations --check --dry-run
	$(PY) scripts/check_demo_sqlite.py "$(REFERENCE_DATA_DIR)"
	rm -rf $(HTML_DIR)
	PVD_HTML_DIR=$(abspath $(HTML_DIR)) $(VENV)/bin/pytest
	$(MAKE) check-html-files

# The demo of `make run` on SQLite: every demo account's pages answer without a server error.
check-demo: $(VENV)/.installed
	$(PY) scripts/check_demo_sqlite.py "$(REFERENCE_DATA_DIR)"

# Valid HTML on its own: the accessibility sweep (every role's pages), then the checker.
check-html: $(VENV)/.installed node_modules/.installed
	rm -rf $(HTML_DIR)
	PVD_HTML_DIR=$(abspath $(HTML_DIR)) $(VENV)/bin/pytest -q tests/e2e/test_accessibility_sweep.py
	$(MAKE) check-html-files

check-html-files:
	@test -n "$$(ls -A $(HTML_DIR) 2>/dev/null)" || { echo "Aucune page dans $(HTML_DIR)"; exit 1; }
	java -jar node_modules/vnu-jar/build/dist/vnu.jar --errors-only $(HTML_DIR)
	@echo "HTML valide : $$(ls $(HTML_DIR) | wc -l) pages vérifiées"

bench: bench-import bench-reference-imports bench-beneficiaires bench-pdf bench-plan bench-actions-export bench-pages bench-rappels bench-dashboards bench-excel-import bench-instances bench-club bench-api

# Benchmarks run on their own database (PostgreSQL by default): never on your db.sqlite3.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/pvd_bench

bench-import: $(VENV)/.installed
	@$(PY) bench/ensure_database.py "$(BENCH_DATABASE_URL)"
	DEBUG=true DATABASE_URL="$(BENCH_DATABASE_URL)" $(MANAGE) migrate --no-input -v0
	DEBUG=true DATABASE_URL="$(BENCH_DATABASE_URL)" $(PY) bench/bench_import.py

# Resident memory of each gunicorn worker once started and after a series of requests
# (national bench data, like bench-pages: fill the database with generate_bench_data first).
BENCH_MEMORY_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/pvd_bench_pages

bench-memory: $(VENV)/.installed
	DEBUG=true DATABASE_URL="$(BENCH_MEMORY_DATABASE_URL)" $(MANAGE) migrate --no-input -v0
	LOG_LEVEL=WARNING DATABASE_URL="$(BENCH_MEMORY_DATABASE_URL)" $(PY) bench/bench_memory.py

# The official files' importers in deployment order, each step timed (a new database each run).
BENCH_REFERENCE_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/pvd_bench_reference

bench-reference-imports: $(VENV)/.installed
	@$(PY) bench/ensure_database.py "$(BENCH_REFERENCE_DATABASE_URL)" --fresh
	DEBUG=true DATABASE_URL="$(BENCH_REFERENCE_DATABASE_URL)" $(MANAGE) migrate --no-input -v0
	DEBUG=true DATABASE_URL="$(BENCH_REFERENCE_DATABASE_URL)" $(PY) bench/bench_reference_imports.py

BENCH_PDF_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/pvd_bench_pdf

bench-pdf: $(VENV)/.installed
	@$(PY) bench/ensure_database.py "$(BENCH_PDF_DATABASE_URL)"
	DEBUG=true DATABASE_URL="$(BENCH_PDF_DATABASE_URL)" $(MANAGE) migrate --no-input -v0
	DEBUG=true LOG_LEVEL=WARNING DATABASE_URL="$(BENCH_PDF_DATABASE_URL)" $(PY) bench/bench_pdf.py

# The plan d'action Excel import of a ~180 KB workbook, as a ratio to openpyxl's raw read.
BENCH_EXCEL_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/pvd_bench_excel

bench-excel-import: $(VENV)/.installed
	@$(PY) bench/ensure_database.py "$(BENCH_EXCEL_DATABASE_URL)"
	DEBUG=true DATABASE_URL="$(BENCH_EXCEL_DATABASE_URL)" $(MANAGE) migrate --no-input -v0
	DEBUG=true LOG_LEVEL=WARNING DATABASE_URL="$(BENCH_EXCEL_DATABASE_URL)" $(PY) bench/bench_excel_import.py

# Action plans at national scale: 1,650 beneficiaries × 50 fiches, generated once.
BENCH_ACTIONS_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/pvd_bench_actions

bench-actions-data: $(VENV)/.installed
	@$(PY) bench/ensure_database.py "$(BENCH_ACTIONS_DATABASE_URL)"
	DEBUG=true DATABASE_URL="$(BENCH_ACTIONS_DATABASE_URL)" $(MANAGE) migrate --no-input -v0
	DEBUG=true DATABASE_URL="$(BENCH_ACTIONS_DATABASE_URL)" $(MANAGE) generate_bench_data

bench-plan: bench-actions-data
	DJANGO_SETTINGS_MODULE=bench.settings LOG_LEVEL=WARNING DATABASE_URL="$(BENCH_ACTIONS_DATABASE_URL)" $(PY) bench/bench_plan.py

bench-actions-export: bench-actions-data
	DJANGO_SETTINGS_MODULE=bench.settings LOG_LEVEL=WARNING DATABASE_URL="$(BENCH_ACTIONS_DATABASE_URL)" $(PY) bench/bench_actions_export.py

# The main pages served by gunicorn (DEBUG off) on the national bench data, as ratios to the
# cheapest view measured in the same run.
BENCH_PAGES_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/pvd_bench_pages

bench-pages: $(VENV)/.installed
	@# With the official files, on a new database only: the national territories, the ANCT
	@# lists and the ORT first, then the bench data (seeding the lists again later would take
	@# the bench's fictitious beneficiaries out of the programme, which the import refuses).
	@created=$$($(PY) bench/ensure_database.py "$(BENCH_PAGES_DATABASE_URL)"); echo "$$created"; \
	DEBUG=true DATABASE_URL="$(BENCH_PAGES_DATABASE_URL)" $(MANAGE) migrate --no-input -v0 && \
	if [ -n "$$created" ] && [ -d "$(REFERENCE_DATA_DIR)" ]; then \
		DJANGO_SETTINGS_MODULE=bench.settings LOG_LEVEL=WARNING DATABASE_URL="$(BENCH_PAGES_DATABASE_URL)" \
		$(MANAGE) seed_demo --reference-data "$(REFERENCE_DATA_DIR)"; fi && \
	DEBUG=true DATABASE_URL="$(BENCH_PAGES_DATABASE_URL)" $(MANAGE) generate_bench_data
	DJANGO_SETTINGS_MODULE=bench.settings LOG_LEVEL=WARNING DATABASE_URL="$(BENCH_PAGES_DATABASE_URL)" $(PY) bench/bench_pages.py

# The Club's search (full text over every town's fiches) served by gunicorn against the
# cheapest view, its query count and the size of its indexes, on the national bench data.
BENCH_CLUB_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/pvd_bench_club

bench-club: $(VENV)/.installed
	@$(PY) bench/ensure_database.py "$(BENCH_CLUB_DATABASE_URL)"
	DEBUG=true DATABASE_URL="$(BENCH_CLUB_DATABASE_URL)" $(MANAGE) migrate --no-input -v0
	DEBUG=true DATABASE_URL="$(BENCH_CLUB_DATABASE_URL)" $(MANAGE) generate_bench_data
	DJANGO_SETTINGS_MODULE=bench.settings LOG_LEVEL=WARNING DATABASE_URL="$(BENCH_CLUB_DATABASE_URL)" $(PY) bench/bench_club.py

# The API's 1,000-row pages (public and with a key) against the cheapest view, on the
# national bench data.
bench-api: bench-actions-data
	DJANGO_SETTINGS_MODULE=bench.settings LOG_LEVEL=WARNING DATABASE_URL="$(BENCH_ACTIONS_DATABASE_URL)" $(PY) bench/bench_api.py

# Dashboards (each role's home) served by gunicorn (bench_pages' harness) against the cheapest
# view, and the bilan PDF of a 50-fiche plan.
bench-dashboards: bench-actions-data
	DJANGO_SETTINGS_MODULE=bench.settings LOG_LEVEL=WARNING DATABASE_URL="$(BENCH_ACTIONS_DATABASE_URL)" $(PY) bench/bench_dashboards.py

clean:
	rm -rf $(VENV) db.sqlite3 media staticfiles .pytest_cache .ruff_cache node_modules build

BENCH_PVD_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/pvd_bench_programme

bench-beneficiaires: $(VENV)/.installed
	@$(PY) bench/ensure_database.py "$(BENCH_PVD_DATABASE_URL)"
	DEBUG=true DATABASE_URL="$(BENCH_PVD_DATABASE_URL)" $(MANAGE) migrate --no-input -v0
	DJANGO_SETTINGS_MODULE=bench.settings LOG_LEVEL=WARNING DATABASE_URL="$(BENCH_PVD_DATABASE_URL)" $(PY) bench/bench_beneficiaires.py

# Reminders: the daily sweep on the national bench data (its own database: it adds people and posts).
BENCH_RAPPELS_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/pvd_bench_rappels

bench-rappels: $(VENV)/.installed
	@$(PY) bench/ensure_database.py "$(BENCH_RAPPELS_DATABASE_URL)"
	DEBUG=true DATABASE_URL="$(BENCH_RAPPELS_DATABASE_URL)" $(MANAGE) migrate --no-input -v0
	DJANGO_SETTINGS_MODULE=bench.settings LOG_LEVEL=WARNING DATABASE_URL="$(BENCH_RAPPELS_DATABASE_URL)" $(PY) bench/bench_rappels.py

# One gunicorn instance, then two, behind HAProxy (Debian's haproxy, wrk and redis-server) on
# the demo: pages per second and their ratio, then a rolling restart under 20 users (errors).
BENCH_INSTANCES_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/pvd_bench_instances

bench-instances: $(VENV)/.installed
	@created=$$($(PY) bench/ensure_database.py "$(BENCH_INSTANCES_DATABASE_URL)"); echo "$$created"; \
	DEBUG=true DATABASE_URL="$(BENCH_INSTANCES_DATABASE_URL)" $(MANAGE) migrate --no-input -v0 && \
	if [ -n "$$created" ]; then \
		DEBUG=true DATABASE_URL="$(BENCH_INSTANCES_DATABASE_URL)" $(MANAGE) seed_demo; fi
	LOG_LEVEL=WARNING DATABASE_URL="$(BENCH_INSTANCES_DATABASE_URL)" $(PY) bench/bench_instances.py
