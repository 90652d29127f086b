# One-command set-up, quick start and tests. Torch is pinned first (it installs from this machine's
# disk); the extras are installed with the same pins so nothing pulls another torch.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PINS   := torch==2.14.1 torchvision==0.29.1
STAMP  := $(VENV)/.multissl-installed

.PHONY: setup quickstart test test-all bench report-check clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install $(PINS)
	$(PY) -m pip install -e ".[all,dev]" $(PINS)
	touch $(STAMP)

quickstart: setup
	$(VENV)/bin/multissl train tabular/scarf-digits

test: setup
	$(PY) -m pytest -q -x --durations=15 ; rc=$$?; if [ $$rc -eq 5 ]; then rc=0; fi; exit $$rc

test-all: setup
	$(PY) -m pytest -q -m "" ; rc=$$?; if [ $$rc -eq 5 ]; then rc=0; fi; exit $$rc

# The report page of RUNS (default runs/) in REPORT, checked in headless Chromium (apt-get install chromium):
# non-blank screenshot, no console error, every picture loaded.
RUNS   ?= runs
REPORT ?= report
report-check: setup
	$(VENV)/bin/multissl report $(RUNS) --out $(REPORT)
	$(PY) -m multissl.report.browser $(REPORT)/index.html --screenshot $(REPORT)/screenshot.png

clean:
	rm -rf $(VENV) runs
