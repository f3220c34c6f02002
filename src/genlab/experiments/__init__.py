"""Named experiments: presets of configs (smoke, quick, full) that reproduce each study."""
