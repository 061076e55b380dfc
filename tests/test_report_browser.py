"""The report page a real tiny experiment writes, opened from disk in headless Chromium.

Three folds of the tiny test model are trained in-process on a labelled set with a few labels
flipped (the label noise the gallery exists to find); the fold that completes the set pools
them, and pooling writes ``report.html``. The browser checks what a reviewer relies on: no
console errors and nothing fetched from a network, every thumbnail loads, the false
positive/negative counts equal a recount of ``oof_predictions.csv``, the filters change what
is shown, and three clicks plus "export" give a ``label_overrides.csv`` that
``python train.py data.label_overrides=...`` applies to exactly those rows.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import fixtures_browser
import numpy as np
import pandas as pd
import pytest
from fixtures_browser import load_every_thumbnail, open_page
from fixtures_train import compose_train, make_dataset, run_cli, tiny_overrides
from PIL import Image

from gmn_weather.experiment import ExperimentDir
from gmn_weather.labelled_images import validate_overrides
from gmn_weather.report import gallery_table, write_report
from gmn_weather.report.wandb_table import COLUMNS
from gmn_weather.training import train

browser = fixtures_browser.browser  # the module's headless Chromium (a pytest fixture)

FLIPPED = (0, 5, 9, 14, 19)  # rows whose label is made wrong: the errors to find


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    labels_csv, image_dir, table = make_dataset(root / "data")
    for i in FLIPPED:
        table.loc[i, "label"] = "cloudy" if table.loc[i, "label"] == "clear" else "clear"
    table.loc[table["station"] == "US0001", "edge_distance_s"] = -math.inf  # all-cloudy nights
    table.to_csv(labels_csv, index=False)
    for k in range(3):
        cfg = compose_train(*tiny_overrides(root / "data", root / "out"), "logger=none",
                            f"fold={k}", "trainer.max_epochs=0")
        result = train(cfg)
    exp = ExperimentDir(result.run_dir.parent)  # named by its overrides (max_epochs-0)
    return SimpleNamespace(root=root, data_dir=root / "data", image_dir=image_dir, exp=exp,
                           table=table, pooled=result.pooled)


def _recount(exp: ExperimentDir) -> SimpleNamespace:
    """False positives and negatives recounted from the pooled CSV at the written threshold."""
    oof = pd.read_csv(exp.oof_csv)
    threshold = json.loads(exp.operating_point_json.read_text())["threshold"]
    predicted = oof["prob_clear"] >= threshold
    oof["cell"] = np.where(predicted, np.where(oof["label"] == "clear", "tp", "fp"),
                           np.where(oof["label"] == "clear", "fn", "tn"))
    return SimpleNamespace(oof=oof, fp=int((oof["cell"] == "fp").sum()),
                           fn=int((oof["cell"] == "fn").sum()))


def test_pooling_writes_the_page_and_its_thumbnails(experiment):
    page = experiment.exp.report_html
    assert experiment.pooled.report_page == page and page.is_file()
    assert f"report page: {page}" in experiment.pooled.report()
    errors = _recount(experiment.exp)
    assert errors.fp + errors.fn >= 3  # the flipped labels give the gallery something to show
    thumbs = sorted((experiment.exp.report_files_dir / "thumbs").glob("*.jpg"))
    html = page.read_text()
    assert thumbs and all(f"report_files/thumbs/{t.name}" in html for t in thumbs)
    assert "<script src" not in html and "<link rel='stylesheet'" not in html


def _tiles(page, grid="#gallery-errors") -> list[dict]:
    return page.eval_on_selector_all(
        f"{grid} .tile", "tiles => tiles.map(t => ({file: t.dataset.file, cell: t.dataset.cell,"
        " station: t.dataset.station}))")


def test_page_in_a_real_browser(experiment, browser):
    errors = _recount(experiment.exp)
    opened = open_page(browser, experiment.exp.report_html)
    page = opened.page
    try:
        thumbs = load_every_thumbnail(page)
        assert len(thumbs) == page.locator(".tile").count() > 0  # every tile has its image
        assert [t for t in thumbs if t["naturalWidth"] == 0] == []
        assert {t["loading"] for t in thumbs} == {"lazy"}

        assert page.inner_text("#n-fp") == str(errors.fp)
        assert page.inner_text("#n-fn") == str(errors.fn)
        shown = _tiles(page)
        wrong = errors.oof[errors.oof["cell"].isin(["fp", "fn"])]
        assert sorted((t["file"], t["cell"]) for t in shown) == \
            sorted(zip(wrong["image_filename"], wrong["cell"]))

        page.select_option("#filter-kind", "fn")
        assert [t["cell"] for t in _tiles(page)] == ["fn"] * errors.fn
        page.select_option("#filter-kind", "all")
        station = wrong["image_filename"].str[:6].value_counts().index[0]
        page.select_option("#filter-station", station)
        filtered = _tiles(page)
        assert {t["station"] for t in filtered} == {station}
        assert len(filtered) == int((wrong["image_filename"].str[:6] == station).sum())
        assert {t["station"] for t in _tiles(page, "#gallery-uncertain")} == {station}
        page.select_option("#filter-station", "")
        assert len(_tiles(page)) == len(shown)

        page.locator("#pr-curve").hover(position={"x": 280, "y": 100})
        assert page.inner_text("#pr-hover-text").startswith("threshold ")
        assert opened.errors == []
        assert opened.remote_requests() == []
    finally:
        opened.close()


def test_review_export_and_retrain_with_the_overrides(experiment, browser, tmp_path):
    opened = open_page(browser, experiment.exp.report_html)
    page = opened.page
    try:
        tiles = page.locator("#gallery-errors .tile")
        chosen = [tiles.nth(i).get_attribute("data-file") for i in range(3)]
        for i, clicks in enumerate((1, 1, 2)):  # the other label, twice; then remove
            for _ in range(clicks):
                tiles.nth(i).click()
        labels = experiment.table.set_index("image_filename")["label"]
        flipped = {name: "cloudy" if labels[name] == "clear" else "clear" for name in chosen[:2]}
        expected = {**flipped, chosen[2]: "remove"}
        for i, name in enumerate(chosen):
            assert tiles.nth(i).inner_text().startswith(f"reviewed: {expected[name]}")
        assert page.inner_text("#review-count") == "3"
        page.reload()  # reviews survive a reload
        assert page.inner_text("#review-count") == "3"
        with page.expect_download() as download:
            page.click("#export")
        assert download.value.suggested_filename == "label_overrides.csv"
        overrides = tmp_path / "label_overrides.csv"
        download.value.save_as(overrides)
        assert opened.errors == []
    finally:
        opened.close()

    rows = [f"{name},{expected[name]}" for name in sorted(expected)]
    assert overrides.read_text() == "\n".join(["image_filename,label", *rows]) + "\n"
    assert len(validate_overrides(pd.read_csv(overrides), overrides)) == 3
    proc = run_cli("train.py", *tiny_overrides(experiment.data_dir, tmp_path / "out"),
                   "logger=none", "fold=0", "trainer.max_epochs=0", "name=reviewed",
                   f"data.label_overrides={overrides}")
    assert (f"label overrides: 3 rows overridden by {overrides} (2 relabelled, 1 removed)"
            in proc.stdout + proc.stderr)
    splits = pd.read_csv(tmp_path / "out" / "reviewed" / "splits.csv").set_index("image_filename")
    assert chosen[2] not in splits.index and len(splits) == len(experiment.table) - 1
    assert {name: splits.loc[name, "label"] for name in chosen[:2]} == flipped


def test_thumbnails_are_reused_until_their_image_changes(experiment):
    first = write_report(experiment.exp)
    n = len(first.thumbnails.thumbnails)
    assert (first.thumbnails.made, first.thumbnails.reused) == (0, n)
    item = first.page.gallery.errors[0]
    old_thumb = first.thumbnails.thumbnails[item.image_filename].path
    source = experiment.image_dir / item.image_filename
    with Image.open(source) as image:
        image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(source)
    second = write_report(experiment.exp)
    assert (second.thumbnails.made, second.thumbnails.reused) == (1, n - 1)
    assert not old_thumb.exists()
    assert second.thumbnails.thumbnails[item.image_filename].path.is_file()


def test_gallery_as_a_wandb_table_without_a_run(experiment):
    import wandb

    report = write_report(experiment.exp)
    table = gallery_table(report)
    gallery = report.page.gallery
    assert table.columns == COLUMNS
    assert len(table.data) == len(gallery.errors) + len(gallery.uncertain)
    first = dict(zip(COLUMNS, table.data[0]))
    assert isinstance(first["image"], wandb.Image)
    assert (first["section"], first["cell"], first["image_filename"]) == \
        ("error", gallery.errors[0].cell, gallery.errors[0].image_filename)
    assert [row[1] for row in table.data].count("uncertain") == len(gallery.uncertain)
