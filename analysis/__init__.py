"""Analysis tools: sweeps, benchmark, plots."""
