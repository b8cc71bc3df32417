"""The skip-aware transformer's invariants (docs/design.md section 4) and its pieces."""

import pytest
import torch

from models import TINY, tiny_model
from skipsr.model import ModelConfig, SkipSRNet
from skipsr.rope import apply_rope, rope_angles
from skipsr.tokens import TokenSet, add_residual_u8, gather, scatter_add
from skipsr.windows import WindowPlan, shift_for, window_ids

def random_inputs(keep: torch.Tensor, cfg=TINY, seed=0):
    g = torch.Generator().manual_seed(seed)
    b, tg, hg, wg = keep.shape
    lr = torch.rand(b, tg * cfg.pt, 3, hg * cfg.lr_patch, wg * cfg.lr_patch, generator=g)
    xt_all = torch.randn(keep.numel(), 3 * cfg.pt, 16, 16, generator=g)
    return lr, xt_all


def masks_to_check(grid=(5, 7, 9), batch=2):
    g = torch.Generator().manual_seed(1)
    out = {"random half": torch.rand(batch, *grid, generator=g) > 0.5,
           "skip 90%": torch.rand(batch, *grid, generator=g) > 0.9,
           "all kept": torch.ones(batch, *grid, dtype=torch.bool)}
    empty = torch.rand(batch, *grid, generator=g) > 0.3
    empty[:, :2, :4, :4] = False  # a whole (unshifted) window empty
    empty[:, :, -1, :] = False  # the bottom border row of shifted windows empty
    out["empty windows"] = empty
    one = torch.zeros(batch, *grid, dtype=torch.bool)
    one[0, 4, 6, 8] = True  # a single kept token in a border window
    out["one token"] = one
    return out


@pytest.mark.parametrize("name", list(masks_to_check()))
def test_kept_tokens_only_equals_masked_dense_attention(name):
    """(a) ragged windows on kept tokens == all tokens with skipped keys masked, read at kept tokens."""
    keep = masks_to_check()[name]
    model = tiny_model()
    lr, xt_all = random_inputs(keep)
    t = torch.tensor([0.3, 0.9])
    with torch.no_grad():
        dense = model.forward_dense(lr, xt_all, t, keep)  # (B*Tg*Hg*Wg, 3, 16, 16)
        tokens = TokenSet.from_keep(keep)
        ragged = model(lr, xt_all[keep.reshape(-1)], t, model.prepare(tokens))
    assert ragged.shape == (int(keep.sum()), 3, 16, 16)
    torch.testing.assert_close(ragged, dense[keep.reshape(-1)], atol=1e-5, rtol=1e-5)


def test_pt2_and_scale2_also_match():
    for cfg in (ModelConfig(dim=32, heads=2, depth=2, stem_channels=8, window=(2, 4, 4), pt=2),
                ModelConfig(dim=32, heads=2, depth=2, stem_channels=8, window=(2, 4, 4), scale=2)):
        keep = torch.rand(1, 3, 5, 6, generator=torch.Generator().manual_seed(3)) > 0.4
        model = tiny_model(cfg)
        lr, xt_all = random_inputs(keep, cfg)
        t = torch.tensor([0.5])
        with torch.no_grad():
            dense = model.forward_dense(lr, xt_all, t, keep)
            ragged = model(lr, xt_all[keep.reshape(-1)], t, model.prepare(TokenSet.from_keep(keep)))
        torch.testing.assert_close(ragged, dense[keep.reshape(-1)], atol=1e-5, rtol=1e-5)


def test_skip_ratio_zero_equals_plain_model():
    """(b) with nothing skipped the skip-aware path is the plain windowed model."""
    grid = (4, 6, 10)
    keep = torch.ones(1, *grid, dtype=torch.bool)
    model = tiny_model()
    lr, xt_all = random_inputs(keep)
    t = torch.tensor([0.7])
    with torch.no_grad():
        plain = model.forward_dense(lr, xt_all, t, keep)  # every token, window-only masks
        skip_aware = model(lr, xt_all, t, model.prepare(TokenSet.from_keep(keep)))
    torch.testing.assert_close(skip_aware, plain, atol=1e-5, rtol=1e-5)
    assert all(p.padding_waste == 0 for p in model.prepare(TokenSet.from_keep(keep))["plans"])


def test_positions_of_kept_tokens_never_change():
    """(c) a kept token's (t, y, x) ids do not depend on which other tokens are skipped."""
    g = torch.Generator().manual_seed(0)
    base = torch.rand(1, 4, 6, 8, generator=g) > 0.5
    ref = {tuple(p.tolist()) for p in TokenSet.from_keep(base).pos}
    for _ in range(5):
        other = base & (torch.rand(base.shape, generator=g) > 0.5)  # skip more tokens
        other[0, 1, 2, 3] = True
        pos = {tuple(p.tolist()) for p in TokenSet.from_keep(other).pos}
        assert (pos - {(0, 1, 2, 3)}) <= ref
        assert (0, 1, 2, 3) in pos
        ang = rope_angles(TokenSet.from_keep(other).pos[:, 1:], 16)[0]
        row = [i for i, p in enumerate(TokenSet.from_keep(other).pos.tolist()) if p == [0, 1, 2, 3]][0]
        torch.testing.assert_close(ang[row], rope_angles(torch.tensor([[1, 2, 3]]), 16)[0][0])


def test_skipping_other_windows_leaves_a_token_unchanged():
    """Window attention is local: skipping tokens outside both of a token's windows changes nothing."""
    model = tiny_model()
    keep = torch.ones(1, 4, 8, 8, dtype=torch.bool)
    lr, xt_all = random_inputs(keep)
    keep2 = keep.clone()
    keep2[0, :, 6:, 6:] = False  # far from token (0, 1, 1, 1) in unshifted and shifted windows
    t = torch.tensor([0.4])
    with torch.no_grad():
        a = model(lr, xt_all, t, model.prepare(TokenSet.from_keep(keep)))
        b = model(lr, xt_all[keep2.reshape(-1)], t, model.prepare(TokenSet.from_keep(keep2)))
    ia = TokenSet.from_keep(keep).pos.tolist().index([0, 1, 1, 1])
    ib = TokenSet.from_keep(keep2).pos.tolist().index([0, 1, 1, 1])
    torch.testing.assert_close(a[ia], b[ib], atol=1e-5, rtol=1e-5)


def test_rope_scores_depend_on_relative_offsets_only():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, 24, generator=g), torch.randn(1, 1, 24, generator=g)

    def score(pq, pk):
        cq, sq = rope_angles(torch.tensor([pq]), 24)
        ck, sk = rope_angles(torch.tensor([pk]), 24)
        return float((apply_rope(q, cq, sq) * apply_rope(k, ck, sk)).sum())

    assert score([1, 2, 3], [0, 5, 1]) == pytest.approx(score([4, 7, 9], [3, 10, 7]), abs=1e-4)
    assert score([1, 2, 3], [0, 5, 1]) != pytest.approx(score([1, 2, 3], [0, 5, 2]), abs=1e-4)


def test_window_plan_covers_each_token_once_with_bounded_padding():
    g = torch.Generator().manual_seed(0)
    keep = torch.rand(2, 6, 11, 13, generator=g) > 0.6
    tokens = TokenSet.from_keep(keep)
    for shifted in (False, True):
        shift = shift_for(tokens.grid, (4, 8, 8), shifted)
        plan = WindowPlan.build(tokens.pos, tokens.grid, (4, 8, 8), shift)
        rows = torch.cat([b.index[b.valid] for b in plan.batches])
        assert sorted(rows.tolist()) == list(range(tokens.n))
        wid = window_ids(tokens.pos, tokens.grid, (4, 8, 8), shift)
        for b in plan.batches:  # each padded row holds one window
            for r in range(b.index.shape[0]):
                assert len(set(wid[b.index[r][b.valid[r]]].tolist())) == 1
        assert plan.padding_waste < 0.2  # groups pad to <= 1/0.8 of their smallest window
    assert shift_for((6, 11, 13), (4, 8, 8), True) == (2, 4, 4)
    assert shift_for((4, 8, 13), (4, 8, 8), True) == (0, 0, 4)


def test_gather_scatter_round_trip():
    g = torch.Generator().manual_seed(0)
    video = torch.rand(2, 4, 3, 32, 48, generator=g)
    keep = torch.rand(2, 2, 2, 3, generator=g) > 0.5
    tokens = TokenSet.from_keep(keep)
    blocks = gather(video, tokens, 16, pt=2)  # (N, 6, 16, 16)
    canvas = torch.zeros_like(video)
    scatter_add(canvas, blocks, tokens, 16, pt=2)
    m = keep.repeat_interleave(2, 1).repeat_interleave(16, 2).repeat_interleave(16, 3)[:, :, None]
    torch.testing.assert_close(canvas, video * m)
    # the uint8 compose: kept tokens become source + 255 * residual (rounded, clamped), the rest keep canvas
    source = (video * 255).round().to(torch.uint8).permute(0, 1, 3, 4, 2).contiguous()  # (B, T, H, W, 3)
    canvas = torch.full_like(source, 7)
    residual = torch.randn(tokens.n, 6, 16, 16, generator=g) * 0.1  # (N, pt*3, p, p)
    add_residual_u8(canvas, source, residual, tokens, 16, pt=2, chunk=3)  # chunks smaller than N
    want = torch.full_like(source, 7)
    for (b, t, y, x), r in zip(tokens.pos.tolist(), residual):
        blk = (slice(2 * t, 2 * t + 2), slice(16 * y, 16 * y + 16), slice(16 * x, 16 * x + 16))
        r = r.view(2, 3, 16, 16).permute(0, 2, 3, 1)  # (pt, p, p, 3)
        want[b][blk] = (source[b][blk].float() + 255 * r).round().clamp(0, 255).to(torch.uint8)
    assert (residual.abs() * 255 > 1).any() and torch.equal(canvas, want)
    halo = gather(video[:, :2], TokenSet.from_keep(torch.ones(2, 2, 2, 3, dtype=torch.bool)), 16, halo=2)
    assert halo.shape == (24, 3, 20, 20)
    torch.testing.assert_close(halo[0, :, 2:18, 2:18], video[0, 0, :, :16, :16])


def test_untrained_model_outputs_zero_residual():
    """Zero-initialised head (DiT style): the untrained model is exactly bicubic."""
    model = SkipSRNet(TINY).eval()
    keep = torch.ones(1, 2, 3, 3, dtype=torch.bool)
    lr, xt_all = random_inputs(keep)
    with torch.no_grad():
        out = model(lr, xt_all, torch.tensor([1.0]), model.prepare(TokenSet.from_keep(keep)))
    assert torch.equal(out, torch.zeros_like(out))


def test_stem_and_head_in_row_chunks_equal_one_call(monkeypatch):
    """At inference the stem, the blocks' per-token parts and the head run over model.ROWS tokens at a
    time (bounded temporaries): the output equals one call over all tokens, per-clip timesteps (a
    conditioning row per token) too."""
    import skipsr.model as model_mod

    keep = torch.rand(2, 4, 6, 10, generator=torch.Generator().manual_seed(3)) > 0.3
    model = tiny_model()
    lr, xt_all = random_inputs(keep)
    tokens = TokenSet.from_keep(keep)
    xt = xt_all[keep.reshape(-1)]
    for t in (torch.tensor([0.7, 0.7]), torch.tensor([0.3, 0.9])):
        with torch.no_grad():
            whole = model(lr, xt, t, model.prepare(tokens))
            monkeypatch.setattr(model_mod, "ROWS", 37)  # a chunk size that does not divide N
            chunked = model(lr, xt, t, model.prepare(tokens))
            monkeypatch.setattr(model_mod, "ROWS", 10**9)
        assert tokens.n > 37 * 3
        torch.testing.assert_close(chunked, whole, atol=1e-6, rtol=1e-5)


def test_row_slices_come_in_a_few_shapes_whatever_the_token_count():
    """rowwise pads a short last slice to a multiple of ROW_BUCKET rows (oneDNN caches a primitive per
    shape: a video's windows must not add a new one each): fn sees at most rows / ROW_BUCKET shapes
    over every n, and the result is fn over all rows, a shared one-row argument included."""
    from skipsr.model import ROW_BUCKET, rowwise

    rows = 4 * ROW_BUCKET
    seen = set()

    def fn(a, shared):
        seen.add(a.shape[0])
        return a * 2 + shared, a.sum(1)

    g = torch.Generator().manual_seed(0)
    for n in (1, 5, ROW_BUCKET, ROW_BUCKET + 1, rows - 1, rows, rows + 1, 3 * rows + 77, 1000):
        a, shared = torch.randn(n, 3, generator=g), torch.randn(1, 3, generator=g)
        with torch.no_grad():
            got = rowwise(fn, n, a, shared, rows=rows)
        torch.testing.assert_close(got[0], a * 2 + shared)
        torch.testing.assert_close(got[1], a.sum(1))
    assert seen <= {ROW_BUCKET * k for k in range(1, 5)} and {ROW_BUCKET, rows} <= seen


def assert_grown_computes_the_same_and_learns(model: SkipSRNet, grown: SkipSRNet) -> None:
    """The grown model's output equals the model's (a non-zero one) on ragged windows; a loss on it is
    backpropagated, so the caller can check that the new parts get gradients."""
    keep = masks_to_check()["random half"]
    lr, xt_all = random_inputs(keep)
    tokens = TokenSet.from_keep(keep)
    xt, t = xt_all[keep.reshape(-1)], torch.tensor([0.3, 0.9])
    with torch.no_grad():
        want = model(lr, xt, t, model.prepare(tokens))
    got = grown(lr, xt, t, grown.prepare(tokens))
    assert want.abs().sum() > 0
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
    got.square().mean().backward()


def test_a_grown_model_computes_what_it_grew_from_and_its_new_blocks_learn():
    """model.grow_depth (a bigger transformer): 4 -> 8 blocks, the same output on ragged
    windows (old blocks keep their order and window shift), the new blocks' gates get gradients; bad
    depths refused."""
    from dataclasses import replace

    from skipsr.model import grow_depth

    model = tiny_model(replace(TINY, depth=4))
    grown = grow_depth(model, 8)
    assert grown.cfg.depth == 8 and len(grown.blocks) == 8
    assert_grown_computes_the_same_and_learns(model, grown)
    for i in (2, 3, 6, 7):  # the new blocks: identity now, but they learn
        assert grown.blocks[i].ada[-1].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="multiple"):
        grow_depth(model, 6)


def test_a_model_grown_in_its_pixel_head_computes_what_it_grew_from_and_its_new_blocks_learn():
    """model.grow_head (local detail capacity): 0 -> 2 residual conv blocks in the head, the same output,
    gradients reach the new blocks' zeroed convs; no shrinking."""
    from skipsr.model import grow_head

    model = tiny_model()
    grown = grow_head(model, 2)
    assert grown.cfg.head_blocks == 2 and len(grown.head.blocks) == 2
    assert_grown_computes_the_same_and_learns(model, grown)
    for blk in grown.head.blocks:
        assert blk.conv2.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="more head blocks"):
        grow_head(grown, 1)


@pytest.mark.slow
def test_compiled_rows_compute_what_eager_does():
    """`compile_rows` (torch.compile of the row-wise parts, `upscale --compile`): the same residual as
    eager within float rounding, over a full slice and a padded short one, and the same weights."""
    from torch._dynamo.utils import counters

    from skipsr.model import ROWS

    keep = torch.rand(1, 4, 12, 20, generator=torch.Generator().manual_seed(5)) > 0.25  # ~720 tokens
    model = tiny_model()
    lr, xt_all = random_inputs(keep)
    tokens = TokenSet.from_keep(keep)
    xt, t = xt_all[keep.reshape(-1)], torch.tensor([0.6])
    assert ROWS < tokens.n < 2 * ROWS
    keys = list(model.state_dict())
    with torch.no_grad():
        eager = model(lr, xt, t, model.prepare(tokens))
        compiled = model.compile_rows()(lr, xt, t, model.prepare(tokens))
    torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-4)
    assert list(model.state_dict()) == keys
    assert counters["stats"]["unique_graphs"] >= 2 + 2 * len(model.blocks)  # it ran compiled, not eager
