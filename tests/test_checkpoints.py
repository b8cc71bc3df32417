"""The shipped checkpoints: they load by default and reproduce their model cards' numbers."""

import pytest

from skipsr import checkpoint
from skipsr.config import ModelCard
from skipsr.evaluation import evaluate
from skipsr.pipeline import SkipSRPipeline


SHIPPED = [*checkpoint.MODELS.values(), checkpoint.DEFAULT_PREDICTOR]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_checkpoints_exist_with_cards(path):
    assert path.exists(), f"{path} is missing from the repository"
    card = checkpoint.read_card(path)
    assert card["weights_sha256_16"] == checkpoint.weights_hash(path)
    assert card["machine"]["device"] and card["steps"] > 0 and card["wall_time_s"] > 0
    v = card["validation"]
    assert set(v["summaries"]) == {"bicubic", "realistic"}  # the default tau is chosen on clean AND realistic input
    rule = v["default_tau_rule"]  # rule v2: no clip loses more than 0.1 JOD to no-skip (docs/design.md section 8)
    assert card["default_tau"] == v["default_tau"] and rule["version"] == 2 and rule["max_jod_drop"] == 0.1
    for summary in v["summaries"].values():
        assert summary["noskip"]["lpips"] is not None and summary["noskip"]["dists"] is not None
        assert summary["noskip"]["jod"] is not None
    assert card["validation"]["steps"] == ModelCard(card).default_steps or card["kind"] == "predictor"
    assert path.stat().st_size < 30 * 2**20
    for kind in card.get("companions", {}):  # what the card's numbers were measured with is shipped too
        assert checkpoint.companion(card, kind) is not None
    assert card.get("oracle", "paper") in ("paper", "fastpath")
    if card["kind"] != "predictor":  # the card's grain is the one its validation numbers were measured with
        assert v.get("grain", 0.0) == card.get("grain", 0.0)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(checkpoint.MODELS))
def test_shipped_model_reproduces_its_card_on_the_reference_clip(name):
    pipe = SkipSRPipeline.from_pretrained(name)  # with the companions (predictor, fast path) its card names
    ref = pipe.cards.model.raw["reference"]
    got = evaluate.reference_numbers(pipe, ref["tau"], ref["steps"], ref["seed"])
    for key in ("psnr_y_bicubic", "psnr_y_noskip", "psnr_y_skip"):
        assert got[key] == pytest.approx(ref[key], abs=0.05), key
    for key in ("lpips_noskip", "lpips_skip"):  # present when the metric weights are (make test converts them)
        if got[key] is not None:
            assert got[key] == pytest.approx(ref[key], abs=0.002), key
    assert got["skip_ratio"] == pytest.approx(ref["skip_ratio"], abs=0.01)
    assert got["psnr_y_noskip"] > got["psnr_y_bicubic"]  # the model does something on unseen content


def test_from_pretrained_owns_the_cards_defaults(tmp_path):
    pipe = SkipSRPipeline.from_pretrained("adversarial")
    card = checkpoint.read_card(checkpoint.MODELS["adversarial"])
    assert (pipe.default_steps, pipe.default_tau) == (ModelCard(card).default_steps, card["default_tau"])
    assert pipe.predictor is not None and pipe.cards.predictor.raw["kind"] == "predictor"
    assert pipe.grain == card.get("grain", 0.0) and SkipSRPipeline.from_pretrained("adversarial", grain=0).grain == 0
    assert pipe.resolve(None, None) == (card["default_tau"], ModelCard(card).default_steps)
    assert pipe.resolve(3, 2) == (3.0, 2)
    lr = evaluate.read_video(evaluate.REFERENCE_CLIP, max_frames=2)[:, ::4, ::4]
    by_default = pipe(lr, mask="predicted")  # tau and steps from the card
    explicit = pipe(lr, tau=card["default_tau"], mask="predicted", steps=ModelCard(card).default_steps)
    assert (by_default.video == explicit.video).all()
    assert SkipSRPipeline.from_pretrained("multistep", load_predictor=False).predictor is None
    with pytest.raises(FileNotFoundError):
        SkipSRPipeline.from_pretrained(tmp_path / "missing.safetensors")
