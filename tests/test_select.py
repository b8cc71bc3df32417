"""Snapshot selection (analysis.select): the rule, keeping the choice, and the residual-gain probe."""

import json

import torch

from analysis.select import choose, keep, residual_gain
from models import tiny_model
from skipsr.tokens import TokenSet


def scores(clean: float, realistic: float, dists: float) -> dict:
    return {"bicubic": {"jod": clean, "dists": dists}, "realistic": {"jod": realistic, "dists": dists}}


def test_the_highest_mean_jod_wins_and_dists_decides_a_near_tie():
    s = {"a": scores(7.6, 6.1, 0.20), "b": scores(7.7, 6.1, 0.25), "c": scores(7.69, 6.1, 0.19)}
    assert choose(s, jod_tie=0.0) == "b"
    assert choose(s, jod_tie=0.02) == "c"  # within 0.02 JOD of b, lower DISTS
    assert choose({"a": s["a"], "b": s["b"]}, jod_tie=0.02) == "b"  # a is 0.05 below: JOD decides


def test_a_residual_gain_scales_what_the_model_adds_and_is_undone_afterwards():
    model = tiny_model()
    keep = torch.ones(1, 2, 3, 4, dtype=torch.bool)
    tokens = TokenSet.from_keep(keep)
    cfg = model.cfg
    lr = torch.rand(1, 2, 3, 3 * cfg.lr_patch, 4 * cfg.lr_patch)
    xt, t = torch.randn(tokens.n, 3, 16, 16), torch.ones(1)
    prep = model.prepare(tokens)
    with torch.no_grad():
        want = model(lr, xt, t, prep)
        with residual_gain(model, 1.5):
            got = model(lr, xt, t, prep)
        after = model(lr, xt, t, prep)
    torch.testing.assert_close(got, 1.5 * want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(after, want)


def test_keep_copies_the_chosen_snapshot_and_its_card_beside_the_ranking(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for step in (2000, 4000):
        (run / f"model-step{step}.safetensors").write_bytes(f"weights {step}".encode())
        (run / f"model-step{step}.json").write_text(json.dumps({"id": f"step{step}"}))
    result = {"chosen": str(run / "model-step4000.safetensors"), "scores": {}}
    keep(result, tmp_path / "state")
    assert (tmp_path / "state" / "chosen.safetensors").read_bytes() == b"weights 4000"
    assert json.loads((tmp_path / "state" / "chosen.json").read_text()) == {"id": "step4000"}
    assert json.loads((tmp_path / "state" / "select.json").read_text()) == result


def test_keep_copies_nothing_when_a_shipped_name_is_chosen(tmp_path):
    keep({"chosen": "distilled", "scores": {}}, tmp_path)
    assert (tmp_path / "select.json").is_file() and not (tmp_path / "chosen.safetensors").exists()
