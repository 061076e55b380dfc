"""The report page's content on hand-made tables: metadata join, gallery order and caps,
the overrides that define an experiment, the curve, and the HTML's escaping."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from gmn_weather.experiment import ExperimentDir
from gmn_weather.report.html_page import render_page
from gmn_weather.report.page_data import (
    DEFAULT_LIMITS,
    DataSources,
    ExperimentOverrides,
    GalleryLimits,
    attach_metadata,
    build_gallery,
    build_page,
    experiment_overrides,
    thin_curve,
)
from gmn_weather.thresholds import choose_operating_point

# Ranking by prob_clear; at 0.5: a, b, d TP; e FP (0.8), c FP (0.6); f, g FN; h TN.
OOF = pd.DataFrame({
    "image_filename": [f"CAWEC2_20251106_2300{i:02d}_000.png" for i in range(4)]
                      + [f"US0001_20251107_0100{i:02d}_000.png" for i in range(4)],
    "label": ["clear", "clear", "cloudy", "clear", "cloudy", "clear", "clear", "cloudy"],
    "group": ["CAWEC2_20251106"] * 4 + ["US0001_20251106"] * 4,
    "fold": [0, 0, 0, 0, 1, 1, 1, 1],
    "prob_clear": [0.9, 0.7, 0.6, 0.55, 0.8, 0.2, 0.42, 0.1],
})


def _labels(**extra) -> pd.DataFrame:
    table = OOF[["image_filename", "label"]].assign(
        station=["CAWEC2"] * 4 + ["US0001"] * 4, night=["20251106"] * 8,
        timestamp=[f"2025-11-06T23:00:{i:02d}" for i in range(8)],
        edge_distance_s=[10.0 * i for i in range(8)])
    return table.assign(**extra)


def test_metadata_comes_from_the_labels_file_by_image_name():
    labels = _labels().iloc[::-1]  # another order: joined by name, not by position
    oof, notes = attach_metadata(OOF, labels)
    assert notes == []
    assert list(oof["image_filename"]) == list(OOF["image_filename"])
    assert oof.loc[4, "station"] == "US0001" and oof.loc[4, "edge_distance_s"] == 40.0
    assert oof.loc[2, "timestamp"] == "2025-11-06T23:00:02"


def test_an_all_cloudy_night_has_no_edge_and_stays_valid_json():
    labels = _labels(edge_distance_s=[-math.inf] * 4 + [12.4, np.nan, 3.0, 4.0])
    oof, _ = attach_metadata(OOF, labels)
    gallery = build_gallery(oof, 0.5, 2, 2, DEFAULT_LIMITS)
    items = {i.image_filename: i.to_dict() for i in gallery.items()}
    cloudy_night = items[OOF.loc[2, "image_filename"]]
    assert (cloudy_night["edge_distance_s"], cloudy_night["edge_text"]) == \
        (None, "none (all-cloudy night)")
    assert items[OOF.loc[4, "image_filename"]]["edge_text"] == "12 s"
    assert items[OOF.loc[5, "image_filename"]]["edge_text"] == "\u2013"
    json.dumps(list(items.values()), allow_nan=False)


def test_missing_metadata_is_derived_and_said():
    oof, notes = attach_metadata(OOF, _labels()[["image_filename", "label"]])
    assert oof.loc[5, "station"] == "US0001" and oof.loc[5, "night"] == "20251106"
    assert oof.loc[5, "timestamp"] == "2025-11-07T01:00:01.000"  # from the image name
    assert oof["edge_distance_s"].isna().all()
    assert any("no station, night, timestamp, edge_distance_s column" in n for n in notes)
    partial, notes = attach_metadata(OOF, _labels().iloc[:6])
    assert partial.loc[7, "station"] == "US0001"
    assert any("2 image(s) of the pooled table are not in the labels file" in n for n in notes)


def test_gallery_orders_errors_by_confidence_and_caps_each_kind():
    oof, _ = attach_metadata(OOF, _labels())
    gallery = build_gallery(oof, 0.5, n_fp=2, n_fn=2, limits=GalleryLimits())
    assert [(i.cell, i.prob_clear) for i in gallery.errors] == [
        ("fp", 0.8), ("fp", 0.6), ("fn", 0.2), ("fn", 0.42)]
    assert gallery.errors[0].station == "US0001" and gallery.errors[0].fold == 1
    capped = build_gallery(oof, 0.5, 2, 2, GalleryLimits(max_per_kind=1, n_uncertain=3))
    assert [(i.cell, i.prob_clear) for i in capped.errors] == [("fp", 0.8), ("fn", 0.2)]
    assert (capped.shown_fp, capped.shown_fn) == (1, 1)
    # Nearest the threshold, right or wrong: 0.55 (TP), 0.42 (FN), 0.6 (FP).
    assert [(i.cell, i.prob_clear) for i in capped.uncertain] == [
        ("tp", 0.55), ("fn", 0.42), ("fp", 0.6)]
    near = build_gallery(oof, 0.5, 2, 2, GalleryLimits(n_uncertain=3))
    assert len(near.items()) == 5  # 0.6 and 0.42 are errors and uncertain: once each


def test_overrides_common_to_every_fold_and_partial_ones():
    per_fold = {0: ["fold=0", "experiment=demo", "data.num_workers=0"],
                1: ["fold=1", "experiment=demo"], 2: None}
    found = experiment_overrides(per_fold)
    assert found.common == ["experiment=demo"]
    assert found.partial == {"data.num_workers=0": [0]}
    assert found.recorded
    assert experiment_overrides({0: None}) == ExperimentOverrides()


def test_thin_curve_keeps_both_ends():
    curve = pd.DataFrame({"threshold": np.linspace(0, 1, 1001), "precision": 0.5,
                          "recall": np.linspace(1, 0, 1001)})
    thin = thin_curve(curve, 50)
    assert len(thin) == 50
    assert thin["threshold"].iloc[0] == 0 and thin["threshold"].iloc[-1] == 1
    assert len(thin_curve(curve.head(10), 50)) == 10


def _page(name="exp", oof=OOF, limits=DEFAULT_LIMITS):
    oof, _ = attach_metadata(oof, _labels())
    op = choose_operating_point(None, oof["label"], oof["prob_clear"], threshold=0.5).to_dict()
    table = pd.DataFrame({"threshold": [0.0, 0.5, 1.0], "precision": [0.6, 0.6, np.nan],
                          "recall": [1.0, 0.6, 0.0], "f1": [0.7, 0.6, 0.0], "tp": [5, 3, 0],
                          "fp": [3, 2, 0], "tn": [0, 1, 3], "fn": [0, 2, 5]})
    return build_page(name, oof, op, table, DataSources("labels.csv", "images"),
                      experiment_overrides({0: ["fold=0", "model.backbone=test_resnet"]}),
                      limits)


def test_page_figures_come_from_the_pooled_metrics():
    page = _page()
    assert (page.metrics.tp, page.metrics.fp, page.metrics.fn) == (3, 2, 2)
    assert (page.gallery.n_fp, page.gallery.n_fn) == (2, 2)
    assert list(page.by_station["station"]) == ["CAWEC2", "US0001"]
    assert list(page.by_station["fp"]) == [1, 1]
    assert page.curve_total_points == 8


def test_the_page_names_the_grouping_that_made_the_folds():
    assert _page().metrics.grouping == "station-night"  # before operating_point.json said
    oof, _ = attach_metadata(OOF, _labels())
    op = choose_operating_point(None, oof["label"], oof["prob_clear"], threshold=0.5).to_dict()
    page = build_page("exp", oof, {**op, "group_by": "night"}, pd.DataFrame(),
                      DataSources("labels.csv", "images"), experiment_overrides({0: None}))
    assert page.metrics.grouping == "night (all stations)"


def test_html_escapes_names_and_embeds_parsable_json():
    name = "a</script><script>alert(1)</script>"
    html = render_page(_page(name=name), [("oof_predictions.csv", "oof_predictions.csv")], "now")
    assert "</script><script>alert" not in html and html.count("<script>") == 1
    assert "<code>a&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;</code>" in html
    data = re.search(r"id='report-data'>(.*?)</script>", html, re.DOTALL).group(1)
    parsed = json.loads(data)
    assert parsed["name"] == name
    assert [i["cell"] for i in parsed["gallery"]["errors"]] == ["fp", "fp", "fn", "fn"]
    assert "<code>model.backbone=test_resnet</code>" in html
    assert "fold=0" not in html
    assert "id='n-fp'>2<" in html and "id='n-fn'>2<" in html
    assert "http://" not in html and "https://" not in html  # nothing fetched from a network


def test_cap_note_counts_the_images_not_shown():
    html = render_page(_page(limits=GalleryLimits(max_per_kind=1)), [], "now")
    assert "1 false positives; 1 false negatives are not shown" in html
    assert "cap-note" not in render_page(_page(), [], "now")


@pytest.mark.parametrize("missing", ["oof_predictions.csv", "operating_point.json"])
def test_report_without_decision_files_names_the_file(tmp_path, missing):
    from gmn_weather.report.sources import ReportError, read_inputs

    OOF.to_csv(tmp_path / "oof_predictions.csv", index=False)
    (tmp_path / "operating_point.json").write_text(json.dumps({"threshold": 0.5}))
    pd.DataFrame({"threshold": [0.5]}).to_csv(tmp_path / "threshold_table.csv", index=False)
    (tmp_path / missing).unlink()
    with pytest.raises(ReportError, match=rf"{missing} is missing.*python analyze.py"):
        read_inputs(ExperimentDir(tmp_path))


def test_missing_labels_file_and_image_folder_are_noted_not_fatal(tmp_path):
    from gmn_weather.report.sources import read_inputs

    OOF.to_csv(tmp_path / "oof_predictions.csv", index=False)
    (tmp_path / "operating_point.json").write_text(json.dumps({"threshold": 0.5}))
    pd.DataFrame({"threshold": [0.5]}).to_csv(tmp_path / "threshold_table.csv", index=False)
    (tmp_path / "fold_0" / ".hydra").mkdir(parents=True)
    (tmp_path / "fold_0" / "run_info.json").write_text(json.dumps({"settings": {"data": {
        "labels_csv": str(tmp_path / "gone.csv"), "image_dir": str(tmp_path / "gone")}}}))
    (tmp_path / "fold_0" / ".hydra" / "overrides.yaml").write_text("- fold=0\n- seed=7\n")
    inputs = read_inputs(ExperimentDir(tmp_path))
    assert inputs.image_dir is None and inputs.overrides.common == ["seed=7"]
    assert inputs.overrides.partial == {}  # fold 1 has no record: not counted against seed=7
    assert any(f"labels file {tmp_path / 'gone.csv'} (data.labels_csv of the folds) not found"
               in note for note in inputs.notes)
    assert any(f"image folder {tmp_path / 'gone'} (data.image_dir" in n for n in inputs.notes)
    assert list(inputs.oof["station"].unique()) == ["CAWEC2", "US0001"]  # from the groups
