"""Training: one module per family plus the shared loop, run directory, checkpoints and guard."""
