"""The labelled image table training starts from: read, validate, filter, group.

``extracted_night_labels.csv`` (or any CSV with ``image_filename,label``) becomes one table
with a ``group`` column that folds are split by (``data.group_by``: station-night, night or
station; :func:`add_groups`). A night is the capture session ``data_prep.label`` recorded in the
``night`` column; a file with a ``night`` column written by the old clock rule (no current
``night_rule``) is refused (:func:`check_night_rule`). The pure functions here check labels,
apply reviewed label overrides, drop ambiguous frames near an interval edge and derive groups;
:func:`load_labelled_images` does the file I/O around them and reports every row it drops by
count, never silently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from gmn_base.errors import GMNFormatError
from gmn_base.image_names import ImageName, parse_image_name
from gmn_base.sessions import NIGHT_RULE, is_current_night_rule
from gmn_base.station_time import format_night, parse_night

log = logging.getLogger(__name__)

LABELS = ("clear", "cloudy")
# data.group_by: what one cross-validation group is.
GROUPINGS = {"station_night": "station-night", "night": "night (all stations)",
             "station": "station"}
# Without a night column, a station's frames more than this apart belong to different nights
# (frames sampled over one capture lie minutes apart; a day separates two captures).
NIGHT_GAP = timedelta(hours=4)
OVERRIDE_LABELS = ("clear", "cloudy", "remove")
REQUIRED_COLUMNS = ("image_filename", "label")
# Rows a message quotes at most, so a bad 100 000-row file gives a readable error.
_QUOTE = 5


class LabelsError(ValueError):
    """The labels (or label overrides) file cannot be used as it is."""


@dataclass
class LabelsReport:
    """What happened to the rows of the labels file on their way into training."""

    rows_read: int = 0
    overridden: int = 0
    removed_by_override: int = 0
    dropped_near_edge: int = 0
    missing_images: list[str] = field(default_factory=list)
    rows_used: int = 0

    def log(self, logger: logging.Logger, labels_csv: str | Path, image_dir: str | Path) -> None:
        logger.info("labels: %d rows read from %s", self.rows_read, labels_csv)
        if self.overridden or self.removed_by_override:
            logger.info("labels: %d rows overridden by review (%d relabelled, %d removed)",
                        self.overridden + self.removed_by_override, self.overridden,
                        self.removed_by_override)
        if self.dropped_near_edge:
            logger.info("labels: %d rows dropped closer than data.min_edge_distance_s to an "
                        "interval edge", self.dropped_near_edge)
        if self.missing_images:
            logger.warning("labels: %d rows dropped because the image is missing in %s "
                           "(first: %s)", len(self.missing_images), image_dir,
                           ", ".join(self.missing_images[:_QUOTE]))
        logger.info("labels: %d images used", self.rows_used)


def _line_numbers(index: pd.Index) -> str:
    # CSV line numbers as a user sees them in an editor: header is line 1.
    lines = [str(i + 2) for i in list(index)[:_QUOTE]]
    more = f" and {len(index) - _QUOTE} more" if len(index) > _QUOTE else ""
    return ", ".join(lines) + more


def read_table(path: Path, what: str, **read_csv_args) -> pd.DataFrame:
    """A CSV table (UTF-8, a BOM allowed; blanks after commas ignored); LabelsError naming
    the file when it is empty, not UTF-8 or not CSV."""
    try:
        return pd.read_csv(path, encoding="utf-8-sig", skipinitialspace=True, **read_csv_args)
    except pd.errors.EmptyDataError:
        raise LabelsError(f"{path} is empty; a {what} needs at least the header "
                          "'image_filename,label' and one row per image") from None
    except UnicodeDecodeError as exc:
        raise LabelsError(f"{path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
                          f"offset {exc.start}); save the {what} as UTF-8") from None
    except pd.errors.ParserError as exc:
        raise LabelsError(f"{path} is not a readable CSV {what}: "
                          f"{str(exc).strip().splitlines()[-1]}") from None


def _clean_header(table: pd.DataFrame) -> pd.DataFrame:
    # "image_filename , label" from a hand-edited file names the same columns.
    return table.rename(columns=lambda c: str(c).strip())


def validate_labels(table: pd.DataFrame, source: str | Path) -> pd.DataFrame:
    """Check columns and label values; return the table with clean string columns."""
    table = _clean_header(table)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise LabelsError(
            f"{source}: missing column(s) {', '.join(missing)}; a labels file needs at least "
            f"'image_filename,label' (found: {', '.join(map(str, table.columns)) or 'nothing'})"
        )
    table = table.copy()
    table["image_filename"] = table["image_filename"].astype(str).str.strip()
    table["label"] = table["label"].astype(str).str.strip()
    bad = table[~table["label"].isin(LABELS)]
    if len(bad):
        values = sorted(bad["label"].unique())[:_QUOTE]
        raise LabelsError(
            f"{source}: unknown label value(s) {', '.join(repr(v) for v in values)} on line(s) "
            f"{_line_numbers(bad.index)}; labels must be 'clear' or 'cloudy'"
        )
    dup = table[table["image_filename"].duplicated(keep=False)]
    if len(dup):
        raise LabelsError(
            f"{source}: image_filename listed more than once: "
            f"{', '.join(sorted(dup['image_filename'].unique())[:_QUOTE])} (lines "
            f"{_line_numbers(dup.index)}); each image needs exactly one label"
        )
    return table


def validate_overrides(overrides: pd.DataFrame, source: str | Path) -> pd.DataFrame:
    overrides = _clean_header(overrides)
    missing = [c for c in REQUIRED_COLUMNS if c not in overrides.columns]
    if missing:
        raise LabelsError(f"{source}: missing column(s) {', '.join(missing)}; a label overrides "
                          "file needs 'image_filename,label'")
    overrides = overrides.copy()
    overrides["image_filename"] = overrides["image_filename"].astype(str).str.strip()
    overrides["label"] = overrides["label"].astype(str).str.strip()
    bad = overrides[~overrides["label"].isin(OVERRIDE_LABELS)]
    if len(bad):
        raise LabelsError(
            f"{source}: unknown override value(s) "
            f"{', '.join(repr(v) for v in sorted(bad['label'].unique())[:_QUOTE])} on line(s) "
            f"{_line_numbers(bad.index)}; use 'clear', 'cloudy' or 'remove'"
        )
    overrides = overrides.drop_duplicates(["image_filename", "label"])
    conflicting = overrides[overrides["image_filename"].duplicated(keep=False)]
    if len(conflicting):
        raise LabelsError(
            f"{source}: conflicting overrides for "
            f"{', '.join(sorted(conflicting['image_filename'].unique())[:_QUOTE])}; "
            "keep one label per image"
        )
    return overrides


def apply_overrides(
    table: pd.DataFrame, overrides: pd.DataFrame, source: str | Path = "label overrides"
) -> tuple[pd.DataFrame, int, int]:
    """Relabel or remove rows named in ``overrides``; return (table, relabelled, removed).

    Only rows whose label actually changes count as relabelled. An override naming an
    image the labels file does not have is an error: it usually means the review was done
    on another data set.
    """
    unknown = sorted(set(overrides["image_filename"]) - set(table["image_filename"]))
    if unknown:
        raise LabelsError(
            f"{source}: {len(unknown)} override(s) name images that are not in the labels file "
            f"(first: {', '.join(unknown[:_QUOTE])}); was the review done on another data set?"
        )
    wanted = overrides.set_index("image_filename")["label"]
    current = table.set_index("image_filename")["label"]
    remove = set(wanted[wanted == "remove"].index)
    relabel = wanted[(wanted != "remove")]
    changed = relabel[relabel != current.reindex(relabel.index)]
    out = table[~table["image_filename"].isin(remove)].copy()
    mask = out["image_filename"].isin(changed.index)
    out.loc[mask, "label"] = out.loc[mask, "image_filename"].map(changed)
    return out, len(changed), len(remove)


def filter_edge_distance(table: pd.DataFrame, min_edge_distance_s: float | None) -> tuple[pd.DataFrame, int]:
    """Drop frames closer than ``min_edge_distance_s`` to a clear-interval edge.

    Frames right at an interval edge are the ones whose label is least certain. Without the
    ``edge_distance_s`` column the option cannot be honoured, which is an error, not a no-op.
    """
    if min_edge_distance_s is None:
        return table, 0
    if "edge_distance_s" not in table.columns:
        raise LabelsError(
            f"data.min_edge_distance_s={min_edge_distance_s} needs an 'edge_distance_s' column "
            "in the labels file (written by data_prep.label); set data.min_edge_distance_s=null"
        )
    distance = pd.to_numeric(table["edge_distance_s"], errors="coerce")
    garbled = distance.isna() & table["edge_distance_s"].notna()
    if garbled.any():
        raise LabelsError(
            f"edge_distance_s is not a number on line(s) {_line_numbers(table.index[garbled])} "
            f"(first: {table.loc[garbled, 'edge_distance_s'].iloc[0]!r}); fix the labels file "
            "or set data.min_edge_distance_s=null")
    # Unknown distances (empty cells: a night without intervals) are not near any edge.
    near = distance.abs() < float(min_edge_distance_s)
    return table[~near.fillna(False)].copy(), int(near.fillna(False).sum())


def check_night_rule(table: pd.DataFrame, source: str | Path) -> None:
    """Refuse a labels file whose ``night`` column came from another night rule: the old
    clock rule (no ``night_rule`` column) split one capture over two nights (groups)."""
    if "night" not in table.columns:
        return
    if "night_rule" not in table.columns:
        what = "no night_rule column"
    else:
        rules = table["night_rule"].fillna("").astype(str).str.strip()
        bad = sorted(set(rules[~rules.map(is_current_night_rule)]))
        if not bad:
            return
        what = "night_rule " + ", ".join(repr(rule) for rule in bad)
    raise LabelsError(
        f"{source}: its night column was written by an older night rule ({what}; this version "
        f"groups by capture sessions, {NIGHT_RULE}), whose nights are wrong for stations whose "
        "capture crosses 12:00 UTC; rerun `python -m data_prep.find` and `python -m "
        "data_prep.label`, or drop the night column to group by the image times")


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and pd.isna(value)) \
        and str(value).strip() != ""


def _night_text(value, source) -> str:
    text = str(value).strip().removesuffix(".0")  # an integer column read as float
    return format_night(parse_night(text, source))


def clustered_nights(stations: list[str], times: list[datetime]) -> list[str]:
    """A night id per frame from the frame times alone: per station, frames more than
    :data:`NIGHT_GAP` apart start a new night, whose id is the UTC date of its first frame."""
    nights = [""] * len(times)
    order = sorted(range(len(times)), key=lambda i: (stations[i], times[i]))
    first = previous = None
    for i in order:
        if previous is None or stations[i] != stations[previous] \
                or times[i] - times[previous] > NIGHT_GAP:
            first = i
        nights[i] = format_night(times[first].date())
        previous = i
    return nights


def _names(table: pd.DataFrame, source) -> list[ImageName]:
    try:
        return [parse_image_name(name, source) for name in table["image_filename"]]
    except GMNFormatError as exc:
        raise LabelsError(
            f"{exc}; add 'station' and 'night' columns to the labels file or use "
            "{ST}_{YYYYMMDD}_{HHMMSS}_{mmm}.png names so images can be grouped by station-night"
        ) from None


def check_group_by(group_by: object) -> None:
    """LabelsError naming ``data.group_by`` unless it is one of :data:`GROUPINGS`."""
    if group_by not in GROUPINGS:
        raise LabelsError(f"data.group_by={group_by!r}: expected one of {', '.join(GROUPINGS)}")


def add_groups(table: pd.DataFrame, source: str | Path, group_by: str = "station_night"
               ) -> pd.DataFrame:
    """The table with a ``group`` column: ``{station}_{night}`` (``station_night``),
    ``{night}`` (``night``: one group per night across stations) or ``{station}``
    (``station``). Station and night come from the ``station``/``night`` columns where given
    (``data_prep.label`` writes the capture session's night id), else from the image name
    (``unknown`` for a station-less one) and :func:`clustered_nights`."""
    check_group_by(group_by)
    n = len(table)
    given_station = table["station"].tolist() if "station" in table.columns else [None] * n
    given_night = table["night"].tolist() if "night" in table.columns else [None] * n
    needs_name = [not (_present(s) and _present(t)) for s, t in zip(given_station, given_night)]
    names = _names(table[needs_name], source) if any(needs_name) else []
    parsed = iter(names)
    images = [next(parsed) if need else None for need in needs_name]
    stations = [str(s).strip() if _present(s) else (image.station or "unknown")
                for s, image in zip(given_station, images)]
    guessed = clustered_nights(stations, [image.timestamp if image else datetime.min
                                         for image in images]) if any(needs_name) else []
    nights = [_night_text(t, source) if _present(t) else guessed[i]
              for i, t in enumerate(given_night)]
    keys = {"station_night": [f"{s}_{t}" for s, t in zip(stations, nights)],
            "night": nights, "station": stations}
    table = table.copy()
    table["group"] = keys[group_by]
    return table


def load_labelled_images(
    labels_csv: str | Path,
    image_dir: str | Path,
    min_edge_distance_s: float | None = None,
    label_overrides: str | Path | None = None,
    group_by: str = "station_night",
) -> tuple[pd.DataFrame, LabelsReport]:
    """Read, validate, override, filter and group (``group_by``) the labels file.

    Returns a table with ``image_filename,label,group`` (plus whatever columns the file had)
    holding only rows whose image exists, and a report of what was dropped.
    """
    labels_csv, image_dir = Path(labels_csv), Path(image_dir)
    if not labels_csv.is_file():
        raise LabelsError(f"labels file not found: {labels_csv} (set data.labels_csv=...)")
    if not image_dir.is_dir():
        raise LabelsError(f"image folder not found: {image_dir} (set data.image_dir=...)")
    table = validate_labels(read_table(labels_csv, "labels file", dtype={"night": str}),
                            labels_csv)
    check_night_rule(table, labels_csv)
    report = LabelsReport(rows_read=len(table))
    if label_overrides is not None:
        overrides_path = Path(label_overrides)
        if not overrides_path.is_file():
            raise LabelsError(f"label overrides file not found: {overrides_path} "
                              "(set data.label_overrides=null or give the review's CSV)")
        overrides = validate_overrides(read_table(overrides_path, "label overrides file"),
                                       overrides_path)
        table, report.overridden, report.removed_by_override = apply_overrides(
            table, overrides, overrides_path)
    table, report.dropped_near_edge = filter_edge_distance(table, min_edge_distance_s)
    exists = table["image_filename"].map(lambda name: (image_dir / name).is_file())
    report.missing_images = sorted(table.loc[~exists, "image_filename"])
    table = table[exists]
    if table.empty:
        raise LabelsError(
            f"no labelled images left to train on: {report.rows_read} rows in {labels_csv}, "
            f"{len(report.missing_images)} images missing in {image_dir}, "
            f"{report.dropped_near_edge} dropped near interval edges, "
            f"{report.removed_by_override} removed by overrides"
        )
    table = add_groups(table, labels_csv, group_by).sort_values("image_filename").reset_index(
        drop=True)
    report.rows_used = len(table)
    return table, report
