"""Reports across runs: one table of many run folders, their curves and accuracy against cost."""
