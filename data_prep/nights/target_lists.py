"""Image-name lists in the reference format (``20251106_234624_983.png,clear`` per line).

``plan.target_lists`` (which ``extract.target_lists`` follows by default) names the frames
wanted: ``plan`` fetches only the capture sessions that hold them (:func:`sessions_for_images`),
``extract`` takes exactly those frames. :func:`read_target_lists`
is their one reader; a missing or malformed list is a failure naming it and the key.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from data_prep.summary import StepSummary
from gmn_base.errors import GMNFormatError
from gmn_base.image_names import ImageName, parse_target_list
from gmn_base.sessions import SessionLookup


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


def sessions_for_images(images: Iterable[ImageName], sessions: SessionLookup,
                        stations: Iterable[str]) -> tuple[set[str], list[ImageName]]:
    """The ids of the capture sessions holding listed images (a name without station: that
    instant on every one of ``stations``), and the images no session holds."""
    stations = sorted(stations)
    found: set[str] = set()
    unmatched = []
    for image in images:
        holding = [sessions.session_for(station, image.timestamp)
                   for station in ([image.station] if image.station else stations)]
        held = {s.session_id for s in holding if s is not None}
        found |= held
        if not held:
            unmatched.append(image)
    return found, unmatched
