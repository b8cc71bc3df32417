"""SkipSR: faster diffusion video super-resolution by skipping the tokens of low-detail patches."""

__version__ = "0.1.0"
