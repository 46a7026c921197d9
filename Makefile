# Two set-up commands that work on a fresh Debian machine (they need make and Python 3.10+;
# as root they install the rest with apt-get when missing):
#   make demo   apply and evaluate examples/quickstart on @local (installs python3.X-venv)
#   make test   ruff, mypy and the whole test suite (also installs openssh-server, docker.io, busybox-static,
#               locales, curl, wget, mmdebstrap, netcat-openbsd, apt-utils, dpkg-dev, postgresql,
#               prometheus-alertmanager:
#               see scripts/system-deps.sh)
#   make docs   write the README's resource reference from the resource kinds
#   make hosts  start root test hosts (Debian + systemd, testsupport/roothosts.py) in the background and write
#               an inventory ($(HOSTS_INVENTORY)); make hosts-down stops them
#   make postgres  start a local PostgreSQL to try the team state store (prints CW_STATE_URL); make postgres-down
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOSTS ?= 3
HOSTS_USER ?= root
HOSTS_INVENTORY ?= .hosts/inventory.py

.PHONY: demo test venv system bench docs clean hosts hosts-down postgres postgres-down

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	sh scripts/python-deps.sh $(PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

system:
	sh scripts/system-deps.sh

demo: venv
	cd examples/quickstart && ../../$(BIN)/clockwork apply && ../../$(BIN)/clockwork evaluate

test: venv system
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

hosts: venv system
	$(BIN)/python -m testsupport.roothosts up -n $(HOSTS) --user $(HOSTS_USER) --inventory $(HOSTS_INVENTORY)

hosts-down: venv
	$(BIN)/python -m testsupport.roothosts down --inventory $(HOSTS_INVENTORY)

postgres: venv system
	$(BIN)/python -m testsupport.postgres up

postgres-down: venv
	$(BIN)/python -m testsupport.postgres down

docs: venv
	$(BIN)/python scripts/docs.py

bench: venv system
	$(BIN)/python bench/apply.py
	$(BIN)/python bench/evaluate.py
	$(BIN)/python bench/reconcile.py
	$(BIN)/python bench/roothosts.py
	$(BIN)/python bench/roundtrips.py
	$(BIN)/python bench/workers.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/scale.py

clean:
	rm -rf $(VENV) *.egg-info
