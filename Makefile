# The two set-up commands of the README:  `make demo`  and  `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench clean
$(VENV)/.runtime: pyproject.toml tools/setup.sh
	bash tools/setup.sh runtime
	touch $@

$(VENV)/.test: pyproject.toml tools/setup.sh
	bash tools/setup.sh test
	touch $(VENV)/.runtime $@

demo: $(VENV)/.runtime
	$(VENV)/bin/stase demo

test: $(VENV)/.test
	$(PY) -m pytest -q

bench: $(VENV)/.test
	$(PY) -m bench.dsp --json

clean:
	rm -rf $(VENV) stase-demo .pytest_cache
