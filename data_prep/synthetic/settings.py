"""What decides a synthetic archive's content: :class:`SyntheticSettings`.

The settings are stored beside the archive (``synthetic_settings.json``): a rerun with the same
settings resumes, other settings for the same folder are refused. Station ids are given as a
count (``CA0001``, ``CA0002``, ...) or as a list of GMN ids (:func:`station_ids`); where each
stands (and so when it captures) is :mod:`.stations`' business.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from data_prep.synthetic.stations import station_site
from gmn_base.station_time import parse_night, parse_station

REGION = "CA"  # the country of the stations a count names


@dataclass(frozen=True)
class SyntheticSettings:
    """Everything that decides the archive's content (stored beside it)."""

    stations: tuple[str, ...] = ("CA0001", "CA0002")
    nights: int = 2
    frames_per_night: int = 150
    frame_interval_s: float = 5.0
    width: int = 1280
    height: int = 720
    seed: int = 0
    legacy_names: bool = False
    day_timelapses: bool = True
    frames_per_day: int | None = None   # frames in each daytime timelapse; None: frames_per_night
    first_night: str = "20251106"       # the local evening of the first night
    locations: dict[str, list[float]] = field(default_factory=dict)  # station: [lat, lon]
    country_folder: str | None = None    # None: the station's country letters (HR/HR000A)
    restarts: int = 1                    # station-nights where RMS restarts mid-night
    bursts_per_night: int = 6
    overcast_fraction: float = 0.25
    moon_probability: float = 0.3
    rms_sample_s: float = 60.0
    crf: int = 23
    preset: str = "veryfast"

    def validate(self) -> None:
        for station in self.stations:
            parse_station(station, "synthetic.stations")
            station_site(station, self.locations)
        if len(set(self.stations)) != len(self.stations):
            raise ValueError(f"synthetic.stations: duplicate station ids in {list(self.stations)}")
        parse_night(self.first_night, "synthetic.first_night")
        if self.country_folder is not None and not (
                isinstance(self.country_folder, str) and self.country_folder.isalnum()):
            raise ValueError(f"synthetic.country_folder={self.country_folder!r}: expected null "
                             "(each station's country letters) or one folder name, e.g. CA")
        if not 0 <= self.restarts <= len(self.stations) * self.nights:
            raise ValueError(f"synthetic.restarts must lie in [0, stations x nights = "
                             f"{len(self.stations) * self.nights}], got {self.restarts}")
        if self.frames_per_day is not None and self.frames_per_day < 1:
            raise ValueError(f"synthetic.frames_per_day must be at least 1, got {self.frames_per_day}")
        for key in ("nights", "frames_per_night", "width", "height", "bursts_per_night"):
            if getattr(self, key) < 1:
                raise ValueError(f"synthetic.{key} must be at least 1, got {getattr(self, key)}")
        for key in ("width", "height"):
            if getattr(self, key) % 2 or getattr(self, key) < 16:
                raise ValueError(f"synthetic.{key} must be even and >= 16 (H.264 yuv420p), "
                                 f"got {getattr(self, key)}")
        if not 0.05 <= self.frame_interval_s <= 600:
            raise ValueError(f"synthetic.frame_interval_s out of range: {self.frame_interval_s}")
        if not 0 <= self.overcast_fraction <= 1:
            raise ValueError(f"synthetic.overcast_fraction must lie in [0, 1]: {self.overcast_fraction}")


def station_ids(stations: int | Sequence[str]) -> tuple[str, ...]:
    """``2`` -> ``("CA0001", "CA0002")``; a list of ids is checked and kept."""
    if isinstance(stations, (int, np.integer)) and not isinstance(stations, bool):
        if stations < 1:
            raise ValueError(f"synthetic.stations: need at least one station, got {stations}")
        return tuple(f"{REGION}{i:04d}" for i in range(1, int(stations) + 1))
    if isinstance(stations, str):
        stations = [stations]
    return tuple(parse_station(str(s), "synthetic.stations") for s in stations)
