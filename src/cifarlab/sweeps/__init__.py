"""Sweeps: a grid of overrides run as one run folder per point, locally, in worker processes or on SLURM."""

# More runs than this from one command is far more likely a mistyped grid than a plan; --max-runs allows it.
# Kept here, not in grid.py, so that the command line can show it without importing the recipe machinery.
MAX_RUNS = 10_000
