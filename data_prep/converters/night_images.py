"""The converters' images on disk: night frames read from ``extracted_night/``, day frames
written to ``converted_day/`` under the same names.

Night images are listed by their GMN names (a bad name is a failure naming it) and read as
PNG bytes plus the decoded image; day images are written atomically, so a killed run leaves no
partial PNG, and the temporaries such a run leaves are removed at the next start.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from data_prep.converters.night_to_day_manifest import MANIFEST_NAME
from data_prep.summary import StepSummary
from gmn_base.atomic import atomic_path, remove_stale_temporaries
from gmn_base.errors import GMNFormatError
from gmn_base.image_names import parse_image_name

NIGHT_DIR = "extracted_night"
DAY_DIR = "converted_day"


def list_night_images(night_dir: Path, summary: StepSummary) -> list[str]:
    """The PNG names of ``night_dir`` that are GMN image names, sorted."""
    if not night_dir.is_dir():
        raise FileNotFoundError(f"{night_dir} does not exist: run the extract step first "
                                "(python -m data_prep.extract) or set paths.data_dir")
    names = []
    for path in sorted(night_dir.glob("*.png")):
        if path.name.startswith("."):
            continue
        try:
            parse_image_name(path.name, source=night_dir)
        except GMNFormatError as exc:
            summary.count("bad_name")
            summary.add_failure(str(exc))
            continue
        names.append(path.name)
    return names


def station_of(name: str) -> str | None:
    """The station in an image name, None when it has none (or is no GMN name)."""
    try:
        return parse_image_name(name).station
    except GMNFormatError:
        return None


def remove_stale(day_dir: Path, data_dir: Path) -> int:
    """Remove the temporaries of day images and of the manifest a killed run left."""
    return (remove_stale_temporaries(day_dir)
            + remove_stale_temporaries(data_dir, target=MANIFEST_NAME))


def read_night(path: Path) -> tuple[bytes, Image.Image]:
    """A night image's PNG bytes and the decoded image; OSError or UnidentifiedImageError when
    it cannot be read as a PNG."""
    data = path.read_bytes()
    image = Image.open(path)
    image.load()
    if image.format != "PNG":  # the bytes are sent as image/png
        raise UnidentifiedImageError(f"{image.format} data in a .png file")
    return data, image


def save_png(image: Image.Image, path: Path) -> None:
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
