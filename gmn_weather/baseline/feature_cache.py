"""Image features computed once per image and kept in a CSV cache beside the experiments.

Each cache row is keyed by the image's file name, size in bytes and modification time (ns)
and the features' version: a changed, replaced or touched image, or a new feature definition,
is recomputed; everything else is read back, so every fold and every rerun reuses the work.
One cache file serves one image folder. The cache is rewritten atomically every
``flush_every`` new images, so an interrupted run keeps what it computed. An image that is
missing or cannot be decoded is an error naming it (its features are never invented).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from gmn_base.atomic import write_csv
from gmn_weather.baseline.features import FEATURE_NAMES, FEATURES_VERSION, image_features

log = logging.getLogger(__name__)

KEY_COLUMNS = ["image_filename", "size_bytes", "mtime_ns", "features_version"]
CACHE_COLUMNS = KEY_COLUMNS + list(FEATURE_NAMES)
# Pillow modes read as they are; any other (palette, alpha, CMYK ...) is converted to RGB.
DIRECT_MODES = {"L", "RGB", "I;16", "I;16B", "I;16L", "I"}


FEATURE_CACHE_DIR = "feature_cache"


def cache_path_for(output_root: str | Path, image_dir: str | Path) -> Path:
    """The cache of one image folder, beside the experiments: ``feature_cache/{name}_{hash}.csv``
    (the hash of the folder's absolute path, so two folders never share a cache)."""
    folder = Path(image_dir).resolve()
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:12]
    return Path(output_root) / FEATURE_CACHE_DIR / f"{folder.name}_{digest}.csv"


class FeatureError(RuntimeError):
    """Images whose features cannot be computed (missing or undecodable)."""


def read_pixels(path: Path) -> np.ndarray:
    """Decode an image file into a numpy array for :func:`image_features`."""
    with Image.open(path) as image:
        if image.mode not in DIRECT_MODES:
            image = image.convert("RGB")
        return np.asarray(image)


def _load_cache(cache_path: Path) -> pd.DataFrame:
    if not cache_path.is_file():
        return pd.DataFrame(columns=CACHE_COLUMNS)
    try:
        cache = pd.read_csv(cache_path, dtype={"image_filename": str})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        log.warning("feature cache %s unreadable (%s): recomputing its images", cache_path, exc)
        return pd.DataFrame(columns=CACHE_COLUMNS)
    if list(cache.columns) != CACHE_COLUMNS:
        log.warning("feature cache %s has other columns (older features): recomputing",
                    cache_path)
        return pd.DataFrame(columns=CACHE_COLUMNS)
    return cache


def _keys(names: Sequence[str], image_dir: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """Current cache keys of the images that exist, and the reason for each that does not."""
    rows, missing = [], {}
    for name in names:
        try:
            stat = (image_dir / name).stat()
        except OSError as exc:
            missing[name] = f"missing ({exc.strerror})"
            continue
        rows.append((name, stat.st_size, stat.st_mtime_ns, FEATURES_VERSION))
    return pd.DataFrame(rows, columns=KEY_COLUMNS), missing


def _unreadable_error(image_dir: Path, failed: dict[str, str]) -> FeatureError:
    shown = "; ".join(f"{name} ({why})" for name, why in list(failed.items())[:5])
    more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
    return FeatureError(
        f"cannot compute features of {len(failed)} image(s) in {image_dir}: {shown}{more}; "
        "restore or remove them from the labels file (features are never invented)")


def image_feature_table(
    names: Sequence[str],
    image_dir: str | Path,
    cache_path: str | Path,
    flush_every: int = 256,
) -> pd.DataFrame:
    """Features of ``names`` (files under ``image_dir``), one row each, indexed by name.

    Reads what ``cache_path`` already holds for unchanged images, computes the rest and
    writes them back; raises :class:`FeatureError` naming every image it could not use
    (after saving the features of the others).
    """
    image_dir, cache_path = Path(image_dir), Path(cache_path)
    names = list(dict.fromkeys(names))
    keys, failed = _keys(names, image_dir)
    cache = _load_cache(cache_path)
    valid = cache.merge(keys, on=KEY_COLUMNS, how="inner")
    todo = sorted(set(keys["image_filename"]) - set(valid["image_filename"]))
    log.info("features: %d image(s) from the cache %s, %d to compute",
             len(valid), cache_path, len(todo))
    key_of = keys.set_index("image_filename")
    kept = cache[~cache["image_filename"].isin(todo)]
    new_rows: list[dict] = []
    for i, name in enumerate(tqdm(todo, desc="features", unit="image", disable=None), 1):
        try:
            features = image_features(read_pixels(image_dir / name))
        except (OSError, ValueError) as exc:  # Pillow's decode errors are OSError subclasses
            failed[name] = str(exc) or type(exc).__name__
            continue
        new_rows.append({"image_filename": name, **key_of.loc[name].to_dict(), **features})
        if i % flush_every == 0:
            _write(cache_path, kept, new_rows)
    if new_rows:
        _write(cache_path, kept, new_rows)
    if failed:
        raise _unreadable_error(image_dir, failed)
    found = pd.concat([valid, pd.DataFrame(new_rows, columns=CACHE_COLUMNS)], ignore_index=True)
    return found.set_index("image_filename").loc[names, list(FEATURE_NAMES)].astype(float)


def _write(cache_path: Path, kept: pd.DataFrame, new_rows: list[dict]) -> None:
    frames = [f for f in (kept, pd.DataFrame(new_rows, columns=CACHE_COLUMNS)) if len(f)]
    write_csv(cache_path, pd.concat(frames, ignore_index=True)[CACHE_COLUMNS])
