"""Shared fixtures: one small synthetic GMN archive per test session.

Import explicitly, e.g. ``from fixtures_synthetic import synthetic_archive``. The archive
is 2 stations x 2 nights, 125 frames per night in 6 bursts (so each video shows a second
keyframe at frame 120), 160x90 pixels, with daytime timelapses; seed 0. It is generated under
pytest's session base temp folder; a second module importing the fixture finds it complete
and only re-reads it (the generator skips finished timelapses).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from data_prep.synthetic.archive import SyntheticArchive, generate_archive

SMALL_ARCHIVE = {"stations": 2, "nights": 2, "frames_per_night": 125, "width": 160, "height": 90,
                 "seed": 0}


def make_small_archive(path: str | Path, **overrides) -> SyntheticArchive:
    """Generate (or reopen) a small archive under ``path``; ``overrides`` change settings."""
    return generate_archive(path, **{**SMALL_ARCHIVE, **overrides})


@pytest.fixture(scope="session")
def synthetic_archive(tmp_path_factory) -> SyntheticArchive:
    return make_small_archive(tmp_path_factory.getbasetemp() / "synthetic_archive")
