"""Image-name lists in the reference format (``20251106_234624_983.png,clear`` per line).

``plan.target_lists`` (which ``extract.target_lists`` follows by default) names the frames
wanted: ``plan`` fetches only the station-nights they imply (:func:`nights_from_images`,
:func:`unmatched_targets`), ``extract`` takes exactly those frames. :func:`read_target_lists`
is their one reader; a missing or malformed list is a failure naming it and the key.
"""

from __future__ import annotations

from pathlib import Path

from data_prep.nights.nights_table import NightRow
from data_prep.summary import StepSummary
from gmn_base.formats import GMNFormatError, ImageName, format_night, parse_target_list

Target = tuple[str | None, str]  # (station, or None for any station; night YYYYMMDD)


def read_target_lists(paths: list[str], key: str, summary: StepSummary) -> list[ImageName]:
    """The image names of every list in ``paths`` (the config key ``key``), in order."""
    images: list[ImageName] = []
    for name in paths:
        path = Path(str(name))
        if not path.is_file():
            summary.add_failure(f"{key}: {path} not found")
            continue
        try:
            images.extend(image for image, _label in parse_target_list(path.read_text(), path))
        except UnicodeDecodeError as exc:
            summary.add_failure(f"{key}: {path} is not UTF-8 text (byte "
                                f"{exc.object[exc.start]:#04x} at offset {exc.start}); save "
                                "the list as UTF-8")
        except (GMNFormatError, OSError) as exc:
            summary.add_failure(str(exc) if str(path) in str(exc) else f"{path}: {exc}")
    return images


def nights_from_images(images: list[ImageName]) -> set[Target]:
    """(station or None, night) pairs implied by listed image names."""
    return {(image.station, format_night(image.night)) for image in images}


def unmatched_targets(targets: set[Target], rows: list[NightRow]) -> list[str]:
    """Targets no station-night in ``nights.csv`` satisfies, as readable strings."""
    have = {(r.station, r.night) for r in rows}
    nights = {r.night for r in rows}
    missing = []
    for station, night in sorted(targets, key=lambda t: (t[1], t[0] or "")):
        if (station is None and night not in nights) or (station is not None
                                                         and (station, night) not in have):
            missing.append(f"{station or 'any station'} night {night}")
    return missing
