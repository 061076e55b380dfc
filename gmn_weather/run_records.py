"""What a job records about itself: :class:`RunInfo` (``run_info.json``, at start) and
:class:`OOFRecord` (``oof_predictions.json``, after its out-of-fold predictions).

Both read back leniently: keys a later version added are ignored, so an older experiment folder
stays readable. :mod:`gmn_weather.experiment` says where they live.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields


@dataclass
class RunInfo:
    """What a job records in its run folder when it starts: which run, under which settings."""

    mode: str = "fold"
    fold: int | None = None
    n_folds: int | None = None
    name: str | None = None
    fingerprint: str = ""
    oof_weights: str = "last"
    settings: dict = field(default_factory=dict)
    n_train: int | None = None
    n_val: int | None = None
    fold_warnings: list[str] = field(default_factory=list)
    started_utc: str | None = None
    # The command-line overrides that define the experiment (not fingerprinted: the settings
    # they lead to are).
    overrides: list[str] = field(default_factory=list)
    resumed_from: str | None = None  # the checkpoint this job continued, if any
    resumed_after_epochs: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> RunInfo:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class OOFRecord:
    """What a fold's out-of-fold predictions were made under (``oof_predictions.json``)."""

    fingerprint: str
    settings: dict = field(default_factory=dict)
    oof_weights: str = "last"
    n_rows: int = 0
    sha256: str = ""  # of oof_predictions.csv's bytes: the record belongs to that file only
    written_utc: str = ""
    metrics: dict = field(default_factory=dict)  # the fold's last validation metrics
    overrides: list[str] = field(default_factory=list)  # as RunInfo.overrides

    @classmethod
    def from_dict(cls, data: Mapping) -> OOFRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
