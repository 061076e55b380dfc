"""The former single GMN formats module, now a re-export of the modules that own each subject.

Kept importable for the callers not yet moved: new code imports from the owning module
(:mod:`gmn_base.station_time`, :mod:`gmn_base.night_folders`, :mod:`gmn_base.timelapse_names`,
:mod:`gmn_base.frame_times`, :mod:`gmn_base.interval_files`, :mod:`gmn_base.image_names`,
:mod:`gmn_base.sessions`, :mod:`gmn_base.day_night`). The clock-rule names
(``night_of``, ``night_start``, ``DetectedFolder``...) come from :mod:`gmn_base.clock_nights`
and go with it.
"""

from __future__ import annotations

from gmn_base.clock_nights import (
    DAY_START_HOURS,
    NIGHT_START_HOURS,
    DetectedFolder,
    find_detected_folder,
    format_detected_folder,
    night_of,
    night_start,
    parse_detected_folder,
)
from gmn_base.errors import GMNFormatError
from gmn_base.frame_times import (
    FrameTimeMap,
    format_frame_time,
    format_frame_times,
    load_frame_time_map,
    load_frame_times,
    parse_frame_time,
    parse_frame_time_map,
    parse_frame_times,
)
from gmn_base.image_names import ImageName, format_image_name, parse_image_name, parse_target_list
from gmn_base.interval_files import (
    INTERVAL_FILE_NAME,
    INTERVAL_TIME_FORMAT,
    ClearIntervals,
    format_interval_file,
    format_interval_time,
    interval_file_text,
    load_interval_file,
    parse_interval_file,
    parse_interval_time,
)
from gmn_base.station_time import (
    STATION_PATTERN,
    UTC,
    as_utc,
    format_night,
    frame_time_at,
    parse_night,
    parse_station,
)
from gmn_base.timelapse_names import (
    FRAMETIMES_SUFFIX,
    LEGACY_TIMESTAMPS_SUFFIX,
    PACKAGE_SUFFIX,
    VIDEO_SUFFIX,
    Timelapse,
    format_timelapse_folder,
    frame_times_candidates,
    frame_times_name,
    parse_timelapse_name,
    timelapse_video_name,
)

__all__ = [
    "DAY_START_HOURS", "FRAMETIMES_SUFFIX", "INTERVAL_FILE_NAME", "INTERVAL_TIME_FORMAT",
    "LEGACY_TIMESTAMPS_SUFFIX", "NIGHT_START_HOURS", "PACKAGE_SUFFIX", "STATION_PATTERN", "UTC",
    "VIDEO_SUFFIX", "ClearIntervals", "DetectedFolder", "FrameTimeMap", "GMNFormatError",
    "ImageName", "Timelapse", "as_utc", "find_detected_folder", "format_detected_folder",
    "format_frame_time", "format_frame_times", "format_image_name", "format_interval_file",
    "format_interval_time", "format_night", "format_timelapse_folder", "frame_time_at",
    "frame_times_candidates", "frame_times_name", "interval_file_text", "load_frame_time_map",
    "load_frame_times", "load_interval_file", "night_of", "night_start", "parse_detected_folder",
    "parse_frame_time", "parse_frame_time_map", "parse_frame_times", "parse_image_name",
    "parse_interval_file", "parse_interval_time", "parse_night", "parse_station",
    "parse_target_list", "parse_timelapse_name", "timelapse_video_name",
]
