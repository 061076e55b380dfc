"""predict.run's checks on what the user typed, before any model is loaded."""

from __future__ import annotations

import pytest

from gmn_weather.predict import run


@pytest.mark.parametrize("threshold", [1.5, -0.1])
def test_threshold_outside_zero_one_is_named(tmp_path, threshold):
    with pytest.raises(ValueError, match=rf"threshold={threshold}: .* \[0, 1\]"):
        run(str(tmp_path / "final"), str(tmp_path), str(tmp_path / "out.csv"), threshold=threshold)
    assert not (tmp_path / "out.csv").exists()
