"""The report page of a 10 000-image experiment stays bounded and usable.

Hand-made fold files (three folds' out-of-fold predictions, run infos and the split of 10 000
images over 1 000 station-nights, with scores that leave about a thousand errors) are pooled
by the real ``pool_folds``, which writes the page. Checked: the gallery holds at most the cap
of each error kind and says how many it leaves out, the page file and its thumbnails stay
small, and in the browser only one gallery page of lazily loaded images is in the document.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

import fixtures_browser
import numpy as np
import pandas as pd
import pytest
from fixtures_browser import open_page
from fixtures_train import draw_frame

from gmn_base.image_names import format_image_name
from gmn_weather.decision_files import pool_folds
from gmn_weather.experiment import ExperimentDir, OOFRecord
from gmn_weather.report.page_data import GalleryLimits

browser = fixtures_browser.browser  # the module's headless Chromium (a pytest fixture)

N_STATIONS, N_NIGHTS, PER_NIGHT = 40, 25, 10  # 10 000 images
LIMITS = GalleryLimits()


def _labelled_images(rng) -> pd.DataFrame:
    rows = []
    for s in range(N_STATIONS):
        station = f"XX{s:04d}"
        for n in range(N_NIGHTS):
            start = datetime(2025, 1, 1, 22) + timedelta(days=n)
            for i in range(PER_NIGHT):
                ts = start + timedelta(minutes=20 * i)
                rows.append({"image_filename": format_image_name(station, ts),
                             "station": station, "night": start.strftime("%Y%m%d"),
                             "timestamp": ts.isoformat(), "edge_distance_s": 60.0 * i})
    table = pd.DataFrame(rows)
    table["label"] = np.where(rng.random(len(table)) < 0.5, "clear", "cloudy")
    table["group"] = table["station"] + "_" + table["night"]
    return table


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    root = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(0)
    table = _labelled_images(rng)
    assert len(table) == 10_000
    image_dir = root / "images"
    image_dir.mkdir()
    # Two drawn frames, hard-linked under every name: 10 000 real PNGs in no time.
    for label in ("clear", "cloudy"):
        draw_frame(label == "clear", rng).save(root / f"{label}.png")
    for name, label in zip(table["image_filename"], table["label"]):
        os.link(root / f"{label}.png", image_dir / name)
    labels_csv = root / "labels.csv"
    table.drop(columns="group").to_csv(labels_csv, index=False)

    exp = ExperimentDir(root / "outputs" / "big")
    groups = table["group"].unique()
    table["fold"] = pd.Series(np.arange(len(groups)) % 3, index=groups)[table["group"]].to_numpy()
    exp.path.mkdir(parents=True)
    table[["image_filename", "label", "group", "fold"]].to_csv(exp.splits_csv, index=False)
    logit = np.where(table["label"] == "clear", 1.5, -1.5) + rng.normal(0, 1.5, len(table))
    table["prob_clear"] = 1 / (1 + np.exp(-logit))
    settings = {"data": {"labels_csv": str(labels_csv), "image_dir": str(image_dir)}}
    for k in range(3):
        fold = exp.fold(k)
        fold.path.mkdir()
        exp.write_fold_oof(k, table.loc[table["fold"] == k, ["image_filename", "label", "group",
                                                             "fold", "prob_clear"]],
                           OOFRecord("f" * 16, settings))
        fold.run_info_json.write_text(json.dumps(
            {"fold": k, "fingerprint": "f" * 16, "oof_weights": "last", "settings": settings}))
    result = pool_folds(exp, min_precision=0.9)
    return result, exp


def test_gallery_is_capped_with_a_note_and_files_stay_small(big):
    result, exp = big
    op = result.operating_point
    n_fp, n_fn = op.fp, op.fn
    assert n_fp > LIMITS.max_per_kind and n_fn > LIMITS.max_per_kind  # the cap matters here
    html = exp.report_html.read_text()
    assert (f"{n_fp - LIMITS.max_per_kind} false positives; {n_fn - LIMITS.max_per_kind} "
            "false negatives are not shown") in html
    assert f"id='n-fp'>{n_fp}<" in html and f"id='n-fn'>{n_fn}<" in html
    assert exp.report_html.stat().st_size < 1_000_000
    thumbs = list((exp.report_files_dir / "thumbs").glob("*.jpg"))
    assert len(thumbs) <= 2 * LIMITS.max_per_kind + LIMITS.n_uncertain
    assert sum(t.stat().st_size for t in thumbs) < 2_000_000


def test_browser_holds_one_page_of_lazy_images(big, browser):
    _, exp = big
    opened = open_page(browser, exp.report_html)
    page = opened.page
    try:
        tiles = page.locator("#gallery-errors .tile")
        assert tiles.count() == LIMITS.page_size
        assert page.locator("#gallery-uncertain .tile").count() == LIMITS.n_uncertain
        images = page.eval_on_selector_all(".tile img", "all => all.map(i => i.loading)")
        assert images == ["lazy"] * (LIMITS.page_size + LIMITS.n_uncertain)
        pages = -(-2 * LIMITS.max_per_kind // LIMITS.page_size)
        assert page.inner_text("#page-info").endswith(f"page 1 of {pages}")
        first = tiles.first.get_attribute("data-file")
        page.click("#page-next")
        assert page.inner_text("#page-info").endswith(f"page 2 of {pages}")
        assert tiles.first.get_attribute("data-file") != first
        assert tiles.count() == LIMITS.page_size
        assert opened.errors == [] and opened.remote_requests() == []
    finally:
        opened.close()
