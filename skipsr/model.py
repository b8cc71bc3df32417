"""The skip-aware video diffusion transformer (docs/design.md section 4), top to bottom.

    LR halo patch --stem--> local features (C, P, P) --+--> token vector (D) --blocks--> head --> x0 residual
    x_t token    --embed--------------------------------^                                (pt*3, 16, 16)

Everything runs on KEPT tokens only: the stem reads each kept token's LR patch with a small halo
(so it is skippable too), the transformer attends within ragged shifted 3D windows of kept tokens
with 3D RoPE on the tokens' original grid positions, and the head maps each token back to its HR
pixels (pixel shuffle) as a residual over the bicubic upsample. Timestep conditioning is adaLN
(DiT), zero-initialised; queries and keys are RMS-normalised (qk-norm).

Two attention paths compute the same function: `forward` (ragged windows packed by `WindowPlan`,
the fast path) and `forward_dense` (all tokens, one dense attention mask that hides skipped
tokens; the readable reference the tests compare against).

The stem and the head work on each token alone, at the LR halo patch's resolution with C channels
(8 KB a token in fp32): at inference they run over `ROWS` tokens at a time (`rowwise`), so their
temporaries stay a few MB instead of several times the token count (peak memory). So do
the blocks' per-token parts (norm, qkv, RoPE before attention; projection and MLP after it): a block
allocates three token-sized tensors and fixed-size temporaries that a long video keeps reusing.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from skipsr.rope import apply_rope, rope_angles
from skipsr.tokens import TokenSet, gather
from skipsr.windows import WindowPlan, dense_mask, shift_for


ROWS = 512  # tokens per stem / head / block-part call at inference (temporaries ~4 MB; 2048: ~20% slower)
ROW_BUCKET = 256  # a shorter last slice is zero-padded to a multiple of this (see rowwise)


def rowwise(fn, n: int, *args: torch.Tensor, rows: int | None = None):
    """fn(*args) over `rows`-row slices of its (n, ...) arguments (an argument of one row is shared),
    written into preallocated outputs: the same result as fn(*args) with temporaries bounded by `rows`.

    fn must treat rows independently. A last slice shorter than `rows` is zero-padded to a multiple
    of ROW_BUCKET rows, so fn sees a handful of shapes whatever n is: oneDNN caches a primitive per
    convolution shape, and a cache that grew with every window's token count made peak memory grow
    with a video's length. Under autograd (training) fn runs once on everything.
    rows: default ROWS."""
    rows = rows or ROWS
    if n == 0 or torch.is_grad_enabled():
        return fn(*args)
    outs, single = None, False
    for i in range(0, n, rows):
        r = min(rows, n - i)
        padded = min(rows, -(-r // ROW_BUCKET) * ROW_BUCKET)
        part = fn(*(_slice_rows(a, i, r, padded) if a.shape[0] == n else a for a in args))
        single = isinstance(part, torch.Tensor)
        parts = (part,) if single else part
        if r == n:  # one slice: its result cut to n rows, without a copy into a preallocated output
            return part[:n] if single else tuple(p[:n] for p in parts)
        if outs is None:
            outs = tuple(torch.empty((n, *p.shape[1:]), dtype=p.dtype, device=p.device) for p in parts)
        for o, p in zip(outs, parts):
            o[i : i + r] = p[:r]
    return outs[0] if single else outs


def _slice_rows(a: torch.Tensor, i: int, r: int, padded: int) -> torch.Tensor:
    """Rows i..i+r of a, followed by zero rows up to `padded` rows."""
    part = a[i : i + r]
    return part if padded == r else torch.cat([part, part.new_zeros(padded - r, *a.shape[1:])])


@dataclass(frozen=True)
class ModelConfig:
    scale: int = 4  # SR factor s (2 or 4)
    pt: int = 1  # frames per token
    token_px: int = 16  # HR pixels per token side
    halo: int = 2  # LR pixels of context the stem reads around each token (>= 1)
    stem_channels: int = 32  # C: channels of the per-token local conv features
    dim: int = 128  # D: transformer width
    depth: int = 4  # transformer blocks
    heads: int = 4  # attention heads (head_dim = D / heads)
    mlp_ratio: float = 2.0  # MLP hidden = mlp_ratio * D
    window: tuple[int, int, int] = (4, 8, 8)  # (t, y, x) attention window in tokens, full grid
    rope_theta: float = 100.0  # RoPE base; positions are small integers
    head_blocks: int = 0  # residual 3x3 conv blocks in the pixel head (local detail capacity, see grow_head)

    @property
    def lr_patch(self) -> int:  # p: LR pixels per token side
        return self.token_px // self.scale

    @property
    def halo_patch(self) -> int:  # P = p + 2 * halo
        return self.lr_patch + 2 * self.halo

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    def __post_init__(self):
        if self.token_px % self.scale or self.scale not in (2, 4):
            raise ValueError(f"scale must be 2 or 4 and divide token_px, got {self.scale}")
        if self.dim % self.heads or self.halo < 1 or self.pt not in (1, 2):
            raise ValueError("need dim % heads == 0, halo >= 1, pt in (1, 2)")
        object.__setattr__(self, "window", tuple(self.window))


SIZES = {
    "cpu": ModelConfig(),  # ~1M parameters: trains and runs on a 2-core CPU
    "mid": ModelConfig(dim=192, heads=6),  # ~2.2x the cpu transformer's work (a wider model at ~70% skipped)
    "large": ModelConfig(stem_channels=64, dim=384, depth=12, heads=6),  # for a GPU
}


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class TimestepEmbedder(nn.Module):
    """Sinusoidal embedding of t in [0, 1] followed by an MLP (DiT)."""

    def __init__(self, dim: int, freq_dim: int = 128):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)  # (half,)
        args = (t.float() * 1000.0)[:, None] * freqs[None]  # (B, half)
        return self.mlp(torch.cat([args.cos(), args.sin()], dim=-1))  # (B, D)


class TokenStem(nn.Module):
    """Per-token local features from the LR patch with halo, plus the embedded noisy target x_t."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c_in, c = 3 * cfg.pt, cfg.stem_channels
        self.cfg = cfg
        self.conv1 = nn.Conv2d(c_in, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.xt_embed = nn.Conv2d(c_in * cfg.scale**2, c, 1)  # x_t pixel-unshuffled to LR resolution
        self.to_token = nn.Linear(c * cfg.halo_patch**2, cfg.dim)

    def forward(self, lr_blocks: torch.Tensor, xt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """lr_blocks (N, 3pt, P, P), xt (N, 3pt, 16, 16) -> features (N, C, P, P), tokens (N, D)."""
        h = self.cfg.halo
        f = F.gelu(self.conv2(F.gelu(self.conv1(lr_blocks))))  # (N, C, P, P)
        e = self.xt_embed(F.pixel_unshuffle(xt, self.cfg.scale))  # (N, C, p, p)
        f = f + F.pad(e, (h, h, h, h))  # (N, C, P, P), x_t only in the token's own pixels
        return f, self.to_token(f.flatten(1))  # (N, C, P, P), (N, D)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.heads, self.hd = cfg.heads, cfg.head_dim
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim)
        self.q_norm = nn.RMSNorm(self.hd, eps=1e-6)
        self.k_norm = nn.RMSNorm(self.hd, eps=1e-6)
        self.proj = nn.Linear(cfg.dim, cfg.dim)

    def _qkv(self, x, cos, sin):
        q, k, v = self.qkv(x).view(x.shape[0], 3, self.heads, self.hd).unbind(1)  # (N, H, hd) each
        q = apply_rope(self.q_norm(q), cos, sin)
        k = apply_rope(self.k_norm(k), cos, sin)
        return q, k, v

    def qkv_rows(self, x: torch.Tensor, cos, sin) -> torch.Tensor:
        """x (n, D) -> (n, 3, H, hd): queries and keys normed and rotated, values (per token: rowwise)."""
        return torch.stack(self._qkv(x, cos, sin), 1)

    def attend(self, qkv: torch.Tensor, plan: WindowPlan) -> torch.Tensor:
        """Ragged windows, before the output projection. qkv (N, 3, H, hd) -> (N, H * hd)."""
        n = qkv.shape[0]
        out = None
        for b in plan.batches:
            # padding slots read row 0: the batch's mask hides them as keys, and their queries land on row N
            qb, kb, vb = qkv[b.index.clamp(max=n - 1)].permute(2, 0, 3, 1, 4).unbind(0)  # (B, H, L, hd) each
            o = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=b.attn_mask)  # (B, H, L, hd)
            if out is None:  # in the attention's dtype (bf16 under autocast); row N: where padding queries land
                out = o.new_empty(n + 1, self.heads * self.hd)
            out[b.index] = o.transpose(1, 2).flatten(2)
        return out[:n] if out is not None else qkv.new_empty(0, self.heads * self.hd)

    def attend_dense(self, x: torch.Tensor, cos, sin, mask: torch.Tensor) -> torch.Tensor:
        """Reference: all tokens, (N, N) boolean mask (True = may attend), before the output projection.
        x (N, D) -> (N, H * hd)."""
        q, k, v = (t.transpose(0, 1) for t in self._qkv(x, cos, sin))  # (H, N, hd) each
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd)  # (H, N, N)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        return (att @ v).transpose(0, 1).flatten(1)  # (N, H * hd)


class Block(nn.Module):
    """Pre-norm transformer block with adaLN-Zero timestep conditioning (DiT)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(cfg)
        self.norm2 = nn.LayerNorm(cfg.dim, elementwise_affine=False, eps=1e-6)
        hidden = int(cfg.dim * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(cfg.dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, cfg.dim))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(cfg.dim, 6 * cfg.dim))

    def forward(self, x, c, cos, sin, plan=None, mask=None):
        """x (N, D); c (N, D) or (1, D) conditioning -> (N, D).

        With a plan (ragged windows) the per-token parts, before and after attention, run over ROWS
        tokens at a time at inference (`rowwise`): a block then allocates three token-sized tensors
        and fixed-size temporaries, which a long video reuses instead of fragmenting the heap."""
        n = x.shape[0]
        sh1, sc1, g1, sh2, sc2, g2 = self.ada(c).chunk(6, dim=-1)  # each (N or 1, D)
        if mask is None:
            qkv = rowwise(self._qkv_rows, n, x, sh1, sc1, cos, sin)  # (N, 3, H, hd)
            a = self.attn.attend(qkv, plan)  # (N, D)
        else:
            a = self.attn.attend_dense(modulate(self.norm1(x), sh1, sc1), cos, sin, mask)  # (N, D)
        return rowwise(self._out_rows, n, x, a, g1, sh2, sc2, g2)  # (N, D)

    def _qkv_rows(self, x, sh1, sc1, cos, sin):
        return self.attn.qkv_rows(modulate(self.norm1(x), sh1, sc1), cos, sin)  # (n, 3, H, hd)

    def _out_rows(self, x, a, g1, sh2, sc2, g2):
        x = x + g1 * self.attn.proj(a)  # (n, D)
        return x + g2 * self.mlp(modulate(self.norm2(x), sh2, sc2))  # (n, D)


class ConvBlock(nn.Module):
    """h + conv(gelu(conv(gelu(h)))) at the LR halo patch's resolution; the last conv starts at zero
    (the block starts as the identity)."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # grow_head relies on it
        nn.init.zeros_(self.conv2.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.conv2(F.gelu(self.conv1(F.gelu(h))))  # (N, C, P, P)


class PixelHead(nn.Module):
    """Token vector + local features -> the token's HR residual pixels (pixel shuffle)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c, p_halo = cfg.stem_channels, cfg.halo_patch
        self.cfg = cfg
        self.norm = nn.LayerNorm(cfg.dim, elementwise_affine=False, eps=1e-6)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(cfg.dim, 2 * cfg.dim))
        self.to_local = nn.Linear(cfg.dim, c * p_halo**2)
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.blocks = nn.Sequential(*(ConvBlock(c) for _ in range(cfg.head_blocks)))
        self.conv2 = nn.Conv2d(c, 3 * cfg.pt * cfg.scale**2, 3)  # valid conv: P -> P - 2

    def forward(self, x, c, feats):
        """x (N, D), c (N or 1, D), feats (N, C, P, P) -> residual (N, 3pt, 16, 16)."""
        cfg = self.cfg
        shift, scale = self.ada(c).chunk(2, dim=-1)
        h = self.to_local(modulate(self.norm(x), shift, scale)).view_as(feats) + feats  # (N, C, P, P)
        h = self.conv2(F.gelu(self.blocks(self.conv1(F.gelu(h)))))  # (N, 3pt*s^2, P-2, P-2)
        m = cfg.halo - 1
        h = h[..., m : m + cfg.lr_patch, m : m + cfg.lr_patch]  # (N, 3pt*s^2, p, p): the token itself
        return F.pixel_shuffle(h, cfg.scale)  # (N, 3pt, 16, 16)


class SkipSRNet(nn.Module):
    """Predicts the x0 residual (HR - bicubic(LR)) of each kept token from (LR, x_t, t)."""

    def __init__(self, cfg: ModelConfig = ModelConfig()):
        super().__init__()
        self.cfg = cfg
        self.stem = TokenStem(cfg)
        self.t_embed = TimestepEmbedder(cfg.dim)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.head = PixelHead(cfg)
        self.initialize_weights()

    def initialize_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        for blk in self.blocks:  # zero-out adaLN modulation: every block starts as the identity
            nn.init.zeros_(blk.ada[-1].weight)
            nn.init.zeros_(blk.ada[-1].bias)
        nn.init.zeros_(self.head.ada[-1].weight)
        nn.init.zeros_(self.head.ada[-1].bias)
        # zero-out the last conv: the untrained model outputs a zero residual, i.e. bicubic
        nn.init.zeros_(self.head.conv2.weight)
        nn.init.zeros_(self.head.conv2.bias)

    def prepare(self, tokens: TokenSet) -> dict:
        """Everything that depends only on which tokens are kept: RoPE tables and window plans.

        Build once per chunk and pass to every call (all sampling steps reuse it).
        """
        cfg = self.cfg
        cos, sin = rope_angles(tokens.pos[:, 1:], cfg.head_dim, cfg.rope_theta)  # (N, hd/2) each
        plans = [WindowPlan.build(tokens.pos, tokens.grid, cfg.window, shift_for(tokens.grid, cfg.window, s))
                 for s in (False, True)]
        return {"cos": cos, "sin": sin, "plans": plans, "tokens": tokens}

    def _cond(self, t: torch.Tensor, tokens: TokenSet) -> torch.Tensor:
        """t (B,) -> conditioning (1, D) when all clips share t, else (N, D) per token."""
        c = self.t_embed(t.reshape(-1))  # (B, D)
        if c.shape[0] == 1 or bool((t == t.reshape(-1)[0]).all()):
            return c[:1]
        return c[tokens.pos[:, 0]]

    def encode_tokens(self, lr: torch.Tensor, xt: torch.Tensor, tokens: TokenSet):
        """lr (B, T, 3, h, w) LR frames (sizes multiples of p), xt (N, 3pt, 16, 16) -> feats, x (N, D)."""
        cfg = self.cfg
        lr_blocks = gather(lr, tokens, cfg.lr_patch, cfg.pt, cfg.halo)  # (N, 3pt, P, P)
        return rowwise(self.stem, tokens.n, lr_blocks, xt)

    def compile_rows(self) -> SkipSRNet:
        """torch.compile (inductor) the parts that `rowwise` runs at inference: the stem, each block's
        rows before and after attention, the head. Their slices have fixed sizes (ROWS, or a multiple of
        ROW_BUCKET for a short window), so each compiles for a few static shapes, once per process
        (inductor keeps the kernels in its on-disk cache for the next one); the ragged attention stays
        eager. Inference only: under autograd `rowwise` runs once on every token, a new shape per batch.
        Needs a C++ compiler on the CPU. The same numbers as eager within float rounding (tested);
        speed and compile time: README "Speed". Returns self."""
        static = functools.partial(torch.compile, dynamic=False)
        self.rows_compiled = True
        self.stem.forward = static(self.stem.forward)
        self.head.forward = static(self.head.forward)
        for blk in self.blocks:
            blk._qkv_rows, blk._out_rows = static(blk._qkv_rows), static(blk._out_rows)
        return self

    def forward(self, lr: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, prep: dict) -> torch.Tensor:
        """Kept tokens only. lr (B, T, 3, h, w); xt (N, 3pt, 16, 16); t (B,) -> x0 residual (N, 3pt, 16, 16)."""
        tokens = prep["tokens"]
        feats, x = self.encode_tokens(lr, xt, tokens)  # (N, C, P, P), (N, D)
        c = self._cond(t, tokens)  # (1 or N, D)
        for i, blk in enumerate(self.blocks):  # odd blocks use the shifted windows
            x = blk(x, c, prep["cos"], prep["sin"], plan=prep["plans"][i % 2])
        return rowwise(self.head, tokens.n, x, c, feats)

    def forward_dense(self, lr: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Reference path: ALL tokens, attention masked to kept keys of the same window.

        keep (B, Tg, Hg, Wg) bool; xt (B*Tg*Hg*Wg, 3pt, 16, 16) for every token in row-major order.
        Returns the residual of every token; only rows of kept tokens are meaningful.
        """
        cfg = self.cfg
        tokens = TokenSet.full(tuple(keep.shape[1:]), batch=keep.shape[0])
        keep_rows = keep.reshape(-1)
        cos, sin = rope_angles(tokens.pos[:, 1:], cfg.head_dim, cfg.rope_theta)
        masks = [dense_mask(tokens.pos, tokens.grid, cfg.window, shift_for(tokens.grid, cfg.window, s), keep_rows)
                 for s in (False, True)]
        feats, x = self.encode_tokens(lr, xt, tokens)
        c = self._cond(t, tokens)
        for i, blk in enumerate(self.blocks):
            x = blk(x, c, cos, sin, mask=masks[i % 2])
        return self.head(x, c, feats)


def grow_depth(model: SkipSRNet, depth: int) -> SkipSRNet:
    """A deeper model that computes exactly what `model` computes (a bigger transformer from a trained one).

    Each old pair of blocks (unshifted, shifted windows) is followed by new pairs until there are
    `depth` blocks; old blocks keep their parity, so their window shifts. A new block copies the
    weights of the old block of its parity before it (features that already mean something) with
    its adaLN modulation zeroed, as in DiT's initialisation: its gates are 0, so it starts as the
    identity and learns from there. depth: a multiple of the old depth's pairs (e.g. 4 -> 8 or 12).
    """
    old = model.cfg.depth
    if old % 2 or depth <= old or depth % old:
        raise ValueError(f"grow_depth: need an even old depth and a multiple of it above it, got {old} -> {depth}")
    grown = SkipSRNet(replace(model.cfg, depth=depth)).to(next(model.parameters()).device)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("blocks.")}
    per_pair = depth // old  # new pairs after each old pair, plus itself
    for i, blk in enumerate(model.blocks):
        pair, parity = divmod(i, 2)
        for j in range(per_pair):
            new = (pair * per_pair + j) * 2 + parity  # old block -> j == 0; its copies -> j >= 1
            for k, v in blk.state_dict().items():
                zero = j > 0 and k.startswith("ada.")
                state[f"blocks.{new}.{k}"] = torch.zeros_like(v) if zero else v.clone()
    grown.load_state_dict(state)
    return grown


def grow_head(model: SkipSRNet, blocks: int) -> SkipSRNet:
    """The same model with `blocks` residual conv blocks in its pixel head, computing exactly what
    `model` computes: the new blocks start as the identity (their last conv is zero) and add local
    detail capacity, where an upscaler such as SPAN spends all of its own. blocks: above the old count."""
    old = model.cfg.head_blocks
    if blocks <= old:
        raise ValueError(f"grow_head: need more head blocks than the model's {old}, got {blocks}")
    grown = SkipSRNet(replace(model.cfg, head_blocks=blocks)).to(next(model.parameters()).device)
    missing, unexpected = grown.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("head.blocks.") for k in missing), (missing, unexpected)
    return grown
