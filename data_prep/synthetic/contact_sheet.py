"""A contact sheet of a synthetic archive: a spread of its frames, decoded from its videos.

Night frames labelled clear, then cloudy, then daytime frames, each group spread from the
clearest to the cloudiest, captioned with kind, station, label, physical label and visible-star
fraction: what a downstream step would extract, at a glance.
"""

from __future__ import annotations

import contextlib
import tarfile
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from data_prep.synthetic.truth import TRUTH_FILE
from gmn_base.atomic import atomic_path
from gmn_base.timelapse_names import PACKAGE_SUFFIX, VIDEO_SUFFIX


def pick_contact_frames(truth: pd.DataFrame, n_night: int = 8, n_day: int = 4) -> pd.DataFrame:
    """A spread of frames for a contact sheet: night frames labelled clear, then cloudy, then
    daytime; within each group evenly spread from the clearest to the cloudiest frame."""
    groups = [truth[(truth["kind"] == "night") & (truth["label"] == label)] for label in ("clear", "cloudy")]
    counts = [n_night - n_night // 2, n_night // 2]
    groups.append(truth[truth["kind"] == "day"])
    counts.append(n_day)
    picks = []
    for group, n in zip(groups, counts):
        if len(group) and n:
            ordered = group.sort_values(["cloud_fraction", "video", "frame_index"], kind="stable")
            idx = np.linspace(0, len(ordered) - 1, min(len(ordered), n)).round().astype(int)
            picks.append(ordered.iloc[np.unique(idx)])
    return pd.concat(picks) if picks else truth.iloc[:0]


@contextlib.contextmanager
def _open_video(path: Path) -> Iterator[av.container.InputContainer]:
    """The video at ``path``, or read in place from its ``.tar`` package where it was packed."""
    if path.exists():
        with av.open(str(path)) as container:
            yield container
        return
    package = path.with_name(path.name[: -len(VIDEO_SUFFIX)] + PACKAGE_SUFFIX)
    with tarfile.open(package, "r:") as tar, av.open(tar.extractfile(path.name)) as container:
        yield container


def write_contact_sheet(archive_dir: str | Path, path: str | Path, *, n_night: int = 8,
                        n_day: int = 4, tile_width: int = 240, columns: int = 4) -> int:
    """Decode a spread of frames from the archive's videos into one captioned PNG.

    Returns the number of tiles. Frames come from the real videos (PyAV), so the sheet shows
    what a downstream step would extract.
    """
    archive_dir = Path(archive_dir)
    truth = pd.read_csv(archive_dir / TRUTH_FILE, dtype={"night": str, "label": str},
                        keep_default_na=False)
    picks = pick_contact_frames(truth, n_night, n_day)
    if picks.empty:
        raise ValueError(f"{archive_dir / TRUTH_FILE}: no frames to show")
    tiles = []
    for video, group in picks.groupby("video", sort=False):
        wanted = set(group["frame_index"])
        with _open_video(archive_dir / video) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index in wanted:
                    row = group[group["frame_index"] == index].iloc[0]
                    tiles.append((row, frame.to_image().convert("RGB")))
                if index >= max(wanted):
                    break
    order = {i: k for k, i in enumerate(picks.index)}
    tiles.sort(key=lambda t: order[t[0].name])
    first = tiles[0][1]
    tile_h = round(tile_width * first.height / first.width)
    caption_h = 14
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * tile_width, rows * (tile_h + caption_h)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=10)
    for k, (row, image) in enumerate(tiles):
        x, y = (k % columns) * tile_width, (k // columns) * (tile_h + caption_h)
        sheet.paste(image.resize((tile_width, tile_h), Image.BILINEAR), (x, y))
        label = row["label"] or "-"
        caption = (f"{row['kind']} {row['station']} label={label} phys={row['physical_label']} "
                   f"stars={row['visible_star_fraction']:.2f}")
        draw.text((x + 2, y + tile_h + 1), caption, fill="black", font=font)
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG", optimize=True)
    return len(tiles)
