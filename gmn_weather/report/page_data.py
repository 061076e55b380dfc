"""The report page's content, computed from an experiment's tables: pure, no I/O.

Takes the pooled out-of-fold table (joined with each image's station, night, timestamp and
``edge_distance_s``), the operating point and the threshold table, and returns a
:class:`PageData`: the summary figures (from :func:`gmn_weather.pooled_metrics.pooled_metrics`),
the precision-recall curve (from :func:`gmn_weather.thresholds.exact_curve`), the per-station
and per-night breakdowns (:func:`gmn_weather.pooled_metrics.by`) and the error gallery: false
positives and false negatives at the threshold, most confident first, capped so a page of an
experiment of any size stays small, plus the images nearest the threshold. Nothing here
recounts a metric those modules own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gmn_base.errors import GMNFormatError
from gmn_base.image_names import parse_image_name
from gmn_weather.labelled_images import GROUPINGS
from gmn_weather.pooled_metrics import PooledMetrics, by, pooled_metrics
from gmn_weather.thresholds import DEFAULT_MIN_PREDICTED_CLEAR, OperatingPoint, exact_curve

META_COLUMNS = ("station", "night", "timestamp", "edge_distance_s")
CELLS = {"fp": "false positive", "fn": "false negative", "tp": "true positive",
         "tn": "true negative"}


@dataclass(frozen=True)
class GalleryLimits:
    """How much of the gallery one page holds; the rest is counted, not shown."""

    max_per_kind: int = 300  # false positives shown at most, and as many false negatives
    n_uncertain: int = 48  # images nearest the threshold
    curve_points: int = 400  # points of the drawn precision-recall curve
    page_size: int = 60  # gallery tiles per page in the browser


DEFAULT_LIMITS = GalleryLimits()


@dataclass
class GalleryItem:
    image_filename: str
    cell: str  # fp, fn, tp or tn at the operating point
    label: str
    prob_clear: float
    fold: int
    station: str
    night: str
    timestamp: str
    edge_distance_s: float | None
    thumb: str | None = None  # path relative to the page, set once the thumbnail exists
    thumb_width: int | None = None
    thumb_height: int | None = None

    @property
    def edge_text(self) -> str:
        """``edge_distance_s`` for reading: -inf is an all-cloudy night, which has no edge."""
        value = self.edge_distance_s
        if value is None:
            return "\u2013"
        if math.isinf(value):
            return "none (all-cloudy night)" if value < 0 else "\u221e"
        return f"{value:.0f} s"

    def to_dict(self) -> dict:
        """JSON-ready: the distance as a finite number or null, and as text."""
        data = dict(self.__dict__)
        edge = self.edge_distance_s
        data["edge_distance_s"] = edge if edge is not None and math.isfinite(edge) else None
        data["edge_text"] = self.edge_text
        return data


@dataclass
class Gallery:
    errors: list[GalleryItem]  # false positives, then false negatives, each most confident first
    uncertain: list[GalleryItem]  # nearest the threshold first
    n_fp: int  # at the threshold, over every image (from the pooled metrics)
    n_fn: int
    max_per_kind: int

    @property
    def shown_fp(self) -> int:
        return sum(item.cell == "fp" for item in self.errors)

    @property
    def shown_fn(self) -> int:
        return sum(item.cell == "fn" for item in self.errors)

    def items(self) -> list[GalleryItem]:
        """Every item on the page once (an image may be an error and near the threshold)."""
        seen: dict[str, GalleryItem] = {}
        for item in self.errors + self.uncertain:
            seen.setdefault(item.image_filename, item)
        return list(seen.values())


@dataclass
class ExperimentOverrides:
    """The command-line overrides that define the experiment (``fold=``/``mode=`` left out)."""

    common: list[str] = field(default_factory=list)
    # Overrides only some folds were started with: override -> folds.
    partial: dict[str, list[int]] = field(default_factory=dict)
    recorded: bool = False  # False when no fold has a .hydra/overrides.yaml


@dataclass
class DataSources:
    """Where the experiment's images and labels came from (its folds' data settings)."""

    labels_csv: str | None = None
    image_dir: str | None = None
    label_overrides: str | None = None


@dataclass
class PageData:
    name: str
    overrides: ExperimentOverrides
    data: DataSources
    metrics: PooledMetrics
    operating_point: dict  # operating_point.json as written by pooling
    curve: pd.DataFrame  # threshold, precision, recall (thinned exact curve)
    curve_total_points: int
    threshold_table: pd.DataFrame
    by_station: pd.DataFrame
    by_night: pd.DataFrame
    gallery: Gallery
    limits: GalleryLimits
    notes: list[str] = field(default_factory=list)


def _defined(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _name_timestamp(name: str) -> str:
    try:
        return parse_image_name(name).timestamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    except GMNFormatError:
        return ""


def attach_metadata(oof: pd.DataFrame, labels: pd.DataFrame | None) -> tuple[pd.DataFrame, list[str]]:
    """The OOF table with ``station,night,timestamp,edge_distance_s`` from the labels file.

    Joined by ``image_filename``. Where the labels file (or a column of it) is missing,
    station and night come from the image's group (``{station}_{night}``, how training
    grouped it) and the timestamp from the image name; ``edge_distance_s`` stays empty. The
    notes say which of these happened, so the page never shows a derived value as read.
    """
    notes = []
    out = oof.drop(columns=[c for c in META_COLUMNS if c in oof.columns])
    present = [c for c in META_COLUMNS if labels is not None and c in labels.columns]
    if present:
        meta = labels[["image_filename", *present]].drop_duplicates("image_filename")
        out = out.merge(meta, on="image_filename", how="left", validate="one_to_one")
    unmatched = int((~oof["image_filename"].isin(labels["image_filename"])).sum()) \
        if labels is not None else len(oof)
    if labels is not None and unmatched:
        notes.append(f"{unmatched} image(s) of the pooled table are not in the labels file; "
                     "their station and night come from their group")
    missing = [c for c in META_COLUMNS if c not in present]
    if labels is not None and missing:
        notes.append(f"the labels file has no {', '.join(missing)} column(s); station and night "
                     "come from each image's group, the timestamp from its name")
    for column in META_COLUMNS:
        if column not in out.columns:
            out[column] = np.nan
    # Groups are "{station}_{night}" (gmn_weather.labels); a group without "_" gives no parts.
    group_parts = out["group"].astype(str).str.rsplit("_", n=1, expand=True) \
        .reindex(columns=[0, 1]).astype(object).fillna("unknown")
    for column, part in (("station", 0), ("night", 1)):
        values = out[column].astype(object)
        empty = values.isna() | (values.astype(str).str.strip() == "")
        out[column] = values.where(~empty, group_parts[part]).astype(str)
    stamps = out["timestamp"].astype(object)
    empty = stamps.isna() | (stamps.astype(str).str.strip() == "")
    out["timestamp"] = stamps.where(~empty, out["image_filename"].map(_name_timestamp)).astype(str)
    out["edge_distance_s"] = pd.to_numeric(out["edge_distance_s"], errors="coerce")
    return out, notes


def experiment_overrides(per_fold: dict[int, list[str] | None]) -> ExperimentOverrides:
    """The overrides every fold was started with, and those only some were (``fold=`` and
    ``mode=`` differ per job by design and are left out). ``None``: no record for that fold."""
    recorded = {k: [o for o in v if o.split("=", 1)[0].lstrip("+~") not in ("fold", "mode")]
                 for k, v in per_fold.items() if v is not None}
    if not recorded:
        return ExperimentOverrides()
    everywhere = set.intersection(*(set(v) for v in recorded.values()))
    first = next(iter(recorded.values()))
    common = [o for o in first if o in everywhere]
    partial: dict[str, list[int]] = {}
    for k in sorted(recorded):
        for override in recorded[k]:
            if override not in everywhere:
                partial.setdefault(override, []).append(k)
    return ExperimentOverrides(common=common, partial=partial, recorded=True)


def confusion_cells(oof: pd.DataFrame, threshold: float) -> pd.Series:
    """``tp``/``fp``/``tn``/``fn`` per image under ``prob_clear >= threshold``."""
    predicted = oof["prob_clear"].to_numpy(dtype=float) >= threshold
    clear = (oof["label"] == "clear").to_numpy()
    cells = np.where(predicted, np.where(clear, "tp", "fp"), np.where(clear, "fn", "tn"))
    return pd.Series(cells, index=oof.index)


def _item(row, cell: str) -> GalleryItem:
    return GalleryItem(
        image_filename=str(row.image_filename), cell=cell, label=str(row.label),
        prob_clear=float(row.prob_clear), fold=int(row.fold), station=str(row.station),
        night=str(row.night), timestamp=str(row.timestamp),
        edge_distance_s=_defined(row.edge_distance_s))


def build_gallery(oof: pd.DataFrame, threshold: float, n_fp: int, n_fn: int,
                  limits: GalleryLimits) -> Gallery:
    """False positives (highest ``prob_clear`` first) and false negatives (lowest first),
    each capped at ``limits.max_per_kind``, and the ``limits.n_uncertain`` images nearest
    the threshold; ties fall back to the file name so the page is reproducible."""
    cells = confusion_cells(oof, threshold)
    table = oof.assign(cell=cells, distance=(oof["prob_clear"] - threshold).abs())
    fp = table[table["cell"] == "fp"].sort_values(["prob_clear", "image_filename"],
                                                  ascending=[False, True])
    fn = table[table["cell"] == "fn"].sort_values(["prob_clear", "image_filename"])
    errors = [_item(r, "fp") for r in fp.head(limits.max_per_kind).itertuples()]
    errors += [_item(r, "fn") for r in fn.head(limits.max_per_kind).itertuples()]
    near = table.sort_values(["distance", "image_filename"]).head(limits.n_uncertain)
    uncertain = [_item(r, r.cell) for r in near.itertuples()]
    return Gallery(errors, uncertain, n_fp=n_fp, n_fn=n_fn, max_per_kind=limits.max_per_kind)


def thin_curve(curve: pd.DataFrame, max_points: int) -> pd.DataFrame:
    """At most ``max_points`` rows of the exact curve, evenly spaced, both ends kept."""
    if len(curve) <= max_points:
        return curve.reset_index(drop=True)
    keep = np.unique(np.linspace(0, len(curve) - 1, max_points).round().astype(int))
    return curve.iloc[keep].reset_index(drop=True)


def operating_point_of(record: dict) -> OperatingPoint:
    """The :class:`OperatingPoint` an ``operating_point.json`` record describes."""
    nan = float("nan")
    return OperatingPoint(
        threshold=float(record["threshold"]), rule=str(record.get("rule", "")),
        precision=nan if record.get("precision") is None else float(record["precision"]),
        recall=nan if record.get("recall") is None else float(record["recall"]),
        f1=nan if record.get("f1") is None else float(record["f1"]),
        tp=int(record.get("tp", 0)), fp=int(record.get("fp", 0)), tn=int(record.get("tn", 0)),
        fn=int(record.get("fn", 0)), met=bool(record.get("met", True)),
        min_predicted_clear=record.get("min_predicted_clear"))


def grouping_of(operating_point: dict) -> str:
    """What one cross-validation group was, from ``operating_point.json`` (``group_by``;
    experiments from before the key grouped by station-night)."""
    group_by = operating_point.get("group_by", "station_night")
    return GROUPINGS.get(group_by, str(group_by))


def build_page(name: str, oof: pd.DataFrame, operating_point: dict,
               threshold_table: pd.DataFrame, data: DataSources,
               overrides: ExperimentOverrides, limits: GalleryLimits = DEFAULT_LIMITS,
               notes: list[str] | None = None, default_min_precision: float = 0.95) -> PageData:
    """Everything the page shows, from the pooled table with metadata attached."""
    op = operating_point_of(operating_point)
    min_precision = operating_point.get("min_precision")
    metrics = pooled_metrics(
        oof, op, grouping=grouping_of(operating_point),
        min_precision=default_min_precision if min_precision is None else float(min_precision),
        min_predicted_clear=operating_point.get("min_predicted_clear")
        or DEFAULT_MIN_PREDICTED_CLEAR)
    curve = exact_curve(oof["label"], oof["prob_clear"])
    return PageData(
        name=name, overrides=overrides, data=data, metrics=metrics,
        operating_point=operating_point,
        curve=thin_curve(curve[["threshold", "precision", "recall"]], limits.curve_points),
        curve_total_points=len(curve), threshold_table=threshold_table,
        by_station=by(oof, "station", op.threshold).to_frame(),
        by_night=by(oof, "night", op.threshold).to_frame(),
        gallery=build_gallery(oof, op.threshold, metrics.fp, metrics.fn, limits),
        limits=limits, notes=list(notes or []))
