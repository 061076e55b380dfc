"""Shared pytest settings. Area-specific fixtures live in tests/fixtures_*.py modules."""

import os

# W&B must never try the network from tests.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
