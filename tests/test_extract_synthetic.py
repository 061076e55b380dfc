"""Every real step on a synthetic archive of stations in four regions (Ontario, Croatia, Western
Australia, British Columbia), whose captures cross 00:00 or 12:00 UTC, with restarts, split
uploads, packages, timelapses without _n/_d flags and legacy names: synthetic -> find -> plan ->
download -> extract (night and day) -> label. Sessions, night ids, night/day classification,
find.last_n, labels and every PNG agree with the generator's truth.csv."""

import csv

import av
import numpy as np
import pandas as pd
import pytest
from fixtures_video import prep_config
from PIL import Image

from data_prep import download, extract, find, label, plan
from data_prep.__main__ import step_config
from data_prep.synthetic import __main__ as synthetic

STATIONS = ["CAWEC2", "HR000A", "AU000A", "CABC01"]


def settings(data):
    return prep_config(data, synthetic__stations=STATIONS, synthetic__nights=2,
                       synthetic__frames_per_night=16, synthetic__frames_per_day=4,
                       synthetic__width=64, synthetic__height=36, synthetic__legacy_names=True,
                       synthetic__restarts=2, synthetic__seed=4,
                       source__root=str(data / "synthetic_gmn"), extract__per_night=8,
                       extract__edge_margin_s=0, extract__total=8, plan__max_videos=None)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    data = tmp_path_factory.mktemp("world")
    cfg = settings(data)
    done = {}
    for name, step, changes in (
            ("synthetic", synthetic, {}), ("find", find, {}), ("plan", plan, {}),
            ("download", download, {}), ("plan_day", plan, {"plan.kind": "day"}),
            ("download_day", download, {}), ("extract", extract, {}),
            ("extract_day", extract, {"extract.kind": "day"}), ("label", label, {})):
        done[name] = step.run(step_config(cfg, changes))
        assert done[name].ok, (name, done[name].failures)
    truth = pd.read_csv(data / "synthetic_gmn" / "truth.csv", dtype=str, keep_default_na=False)
    return data, done, truth.set_index("image_filename")


def test_sessions_and_night_ids_match_the_generator(world):
    data, done, truth = world
    with (data / "nights.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    night_truth = truth[truth["kind"] == "night"]
    assert {(r["station"], r["night"], r["session"]) for r in rows} == set(
        zip(night_truth["station"], night_truth["night"], night_truth["session"]))
    assert done["find"].counts["sessions"] == 8 and done["find"].counts["restarts"] == 2
    assert sum(len(r["night_folders"].split(";")) for r in rows) >= 8 + 2 + 1  # + _imgdata
    # Western Canada's evening of the 6th starts 01:10 UTC on the 7th: night id 20251107.
    assert sorted(r["night"] for r in rows if r["station"] == "CABC01") == ["20251107", "20251108"]
    spans = {r["station"]: (r["start"][11:13], r["end"][11:13]) for r in rows}
    assert spans["HR000A"][0] == "16" and spans["CABC01"][1] == "14"   # across 00:00, 12:00 UTC
    assert spans["AU000A"] == ("11", "20")


def test_labels_match_truth_in_every_region(world):
    data, done, truth = world
    labels = pd.read_csv(data / "extracted_night_labels.csv", dtype=str)
    assert set(labels["station"]) == set(STATIONS)
    assert len(labels) == 8 * 8 and done["extract"].counts["nights"] == 8
    expected = truth.loc[labels["image_filename"]]
    assert (labels["label"].to_numpy() == expected["label"].to_numpy()).all()
    assert (labels["night"].to_numpy() == expected["night"].to_numpy()).all()
    assert (expected["kind"] == "night").all()
    assert set(labels["label"]) == {"clear", "cloudy"}
    # Night and day frames were told apart by flags or sessions: every day image is a day frame.
    days = [p.name for p in (data / "extracted_day").glob("*.png")]
    assert len(days) == 8 and (truth.loc[days, "kind"] == "day").all()
    assert done["extract"].counts["packages_unpacked"] >= 1


def test_every_png_is_its_truth_frame(world):
    data, _done, truth = world
    for folder in ("extracted_night", "extracted_day"):
        names = sorted(p.name for p in (data / folder).glob("*.png"))
        for name in names[::5]:
            row = truth.loc[name]
            video = data / "raw_data" / row["video"].rsplit("/", 1)[1]
            with av.open(str(video)) as container:
                for i, frame in enumerate(container.decode(video=0)):
                    if i == int(row["frame_index"]):
                        expected = frame.to_ndarray(format="rgb24" if folder == "extracted_day"
                                                    else "gray")
                        break
            with Image.open(data / folder / name) as image:
                assert np.array_equal(np.asarray(image), expected), name


def test_last_n_keeps_the_newest_session_of_each_station(world, tmp_path):
    data, _done, truth = world
    summary = find.run(prep_config(tmp_path, source__root=str(data / "synthetic_gmn"),
                                   find__last_n=1))
    assert summary.ok and summary.counts["sessions"] == 4
    with (tmp_path / "nights.csv").open() as fh:
        kept = {(r["station"], r["night"]) for r in csv.DictReader(fh)}
    newest = truth[truth["kind"] == "night"].groupby("station")["night"].max()
    assert kept == set(newest.items())
