"""converter=gemini end to end: the real google-genai client against the stand-in server on
127.0.0.1 (tests/fixtures_gemini.py), the real composed Hydra config, real files."""

from __future__ import annotations

import csv
import itertools
import json
import urllib.request
from pathlib import Path

import pytest
from fixtures_gemini import (
    DAY_GREEN,
    GeminiStandIn,
    files_containing,
    gemini_overrides,
    make_night_image,
    prep_config,
)
from PIL import Image

from data_prep import night_to_day
from data_prep.converters.gemini_settings import MissingAPIKeyError
from data_prep.converters.night_to_day_manifest import MANIFEST_COLUMNS, read_manifest

KEY = "AIzaTEST-not-a-real-key-7f3c9e21"

SCRIPT = {  # marker -> scenario
    1: "success", 2: "rate_limited_once", 3: "unavailable_twice", 4: "blocked_prompt",
    5: "image_safety", 6: "prohibited_content", 7: "text_once", 8: "text_always",
    9: "stars", 10: "wrong_size", 11: "thought", 12: "success",
}


def name_of(marker: int) -> str:
    return f"CAWEC2_20251106_2230{marker:02d}_000.png"


def make_images(data_dir: Path, markers, mode_of=lambda m: "L") -> None:
    for m in markers:
        make_night_image(data_dir / "extracted_night" / name_of(m), m, mode=mode_of(m))


@pytest.fixture
def api_key(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    return KEY


def test_scripted_responses_manifest_outputs_and_restart(tmp_path, api_key):
    data = tmp_path / "data"
    make_images(data, SCRIPT, mode_of=lambda m: "RGB" if m == 12 else "L")
    with GeminiStandIn(KEY, SCRIPT) as server:
        cfg = prep_config(gemini_overrides(data, server))
        summary = night_to_day.run(cfg)

        manifest_path = data / "night_to_day_manifest.csv"
        with open(manifest_path, newline="") as fh:
            assert tuple(next(csv.reader(fh))) == MANIFEST_COLUMNS
        rows = read_manifest(manifest_path)
        assert set(rows) == {name_of(m) for m in SCRIPT}
        by = {m: rows[name_of(m)] for m in SCRIPT}
        status = {m: r.status for m, r in by.items()}
        assert status == {1: "done", 2: "done", 3: "done", 4: "blocked", 5: "blocked",
                          6: "blocked", 7: "done", 8: "failed", 9: "done", 10: "done",
                          11: "done", 12: "done"}
        # requests per image: day request(s) + star check (+ correction)
        assert {m: r.attempts for m, r in by.items()} == {
            1: 2, 2: 3, 3: 4, 4: 1, 5: 1, 6: 1, 7: 3, 8: 3, 9: 3, 10: 2, 11: 2, 12: 2}
        assert {m: len(server.requests_for(m)) for m in SCRIPT} == {
            m: r.attempts for m, r in by.items()}
        assert [r.kind for r in server.requests_for(9)] == ["image", "check", "correction"]
        assert by[9].corrected and by[9].verified
        assert not by[1].corrected and by[1].verified
        assert "PROHIBITED_CONTENT" in by[4].error and "IMAGE_SAFETY" in by[5].error
        assert "no image after 3 answers" in by[8].error
        assert "resized 64x36 -> 32x18" in by[10].error
        assert {r.model for r in rows.values()} == {"gemini-2.5-flash-image"}
        assert {r.api_version for r in server.requests} == {"v1"}  # the SDK's default
        assert len({r.prompt_hash for r in rows.values()}) == 1
        # Retry-After: 1 was honoured between the 429 and the retry
        first, second = server.requests_for(2, "image")
        assert (first.status, second.status) == (429, 200)
        assert second.at - first.at >= 0.95
        assert [r.status for r in server.requests_for(3, "image")] == [503, 503, 200]

        out = data / "converted_day"
        assert sorted(p.name for p in out.iterdir()) == sorted(
            name_of(m) for m, s in status.items() if s == "done")
        for m, s in status.items():
            if s == "done":
                with Image.open(out / name_of(m)) as img:
                    assert img.size == (32, 18)
                    corrected = 1 if m == 9 else 0
                    # the final image, not the thought image (G=100) nor the uncorrected one
                    assert img.convert("RGB").getpixel((5, 5)) == (m, DAY_GREEN, corrected)
        assert summary.counts["done"] == 8 and summary.counts["blocked"] == 3
        assert summary.counts["failed"] == 1 and summary.exit_code == 1
        assert summary.counts["requests"] == sum(r.attempts for r in rows.values())
        assert any(name_of(8) in f for f in summary.failures)

        # Restart: nothing is sent for done or blocked images; the failed one is retried.
        server.reset_log()
        again = night_to_day.run(prep_config(gemini_overrides(data, server)))
        assert {r.marker for r in server.requests} == {8}
        assert again.counts["skipped_done"] == 8 and again.counts["skipped_blocked"] == 3
        assert read_manifest(manifest_path)[name_of(8)].attempts == 6  # counted over runs

        # converter.retry_blocked=true sends the blocked ones again (and the failed one)
        server.reset_log()
        night_to_day.run(prep_config(gemini_overrides(data, server, retry_blocked="true")))
        assert {r.marker for r in server.requests} == {4, 5, 6, 8}

    assert files_containing(tmp_path, KEY) == []


def test_concurrency_and_request_pacing(tmp_path, api_key):
    data = tmp_path / "data"
    make_images(data, range(1, 9))
    with GeminiStandIn(KEY, image_delay_s=0.3) as server:
        summary = night_to_day.run(prep_config(gemini_overrides(data, server, concurrency=4)))
        assert summary.counts["done"] == 8 and summary.exit_code == 0
        assert server.max_in_flight == 4  # four at once, never more
        first_four = sorted(r.at for r in server.requests if r.kind == "image")[:4]
        assert first_four[-1] - first_four[0] < 0.3  # all sent before the first answer

    data2 = tmp_path / "paced"
    make_images(data2, range(1, 5))
    with GeminiStandIn(KEY) as server:
        summary = night_to_day.run(prep_config(
            gemini_overrides(data2, server, concurrency=4, rpm=600)))  # one per 0.1 s
        times = sorted(r.at for r in server.requests)
        assert len(times) == 8  # day request + star check, all paced together
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 0.03  # 0.1 s slots (unpaced: ~0); arrival jitters with the load
        assert times[-1] - times[0] >= 0.6  # 7 slots of 0.1 s


def test_timeout_is_retried(tmp_path, api_key):
    data = tmp_path / "data"
    make_images(data, [1, 2])
    with GeminiStandIn(KEY, {1: "timeout_once"}) as server:
        summary = night_to_day.run(prep_config(
            gemini_overrides(data, server, request_timeout_s=1.0)))
        assert summary.counts["done"] == 2 and summary.exit_code == 0
        tries = server.requests_for(1, "image")
        assert len(tries) >= 2  # timed out (the stand-in waited 3 s), then answered
        assert tries[1].at - tries[0].at >= 1.0
        assert read_manifest(data / "night_to_day_manifest.csv")[name_of(1)].attempts == \
            len(server.requests_for(1))


def test_wrong_api_key_stops_the_run_without_a_retry_storm(tmp_path, api_key):
    data = tmp_path / "data"
    make_images(data, range(1, 7))
    with GeminiStandIn("the-server-expects-another-key") as server:
        summary = night_to_day.run(prep_config(gemini_overrides(data, server, concurrency=2)))
        assert summary.exit_code == 1
        assert any("rejected the API key" in f and "GEMINI_API_KEY" in f
                   for f in summary.failures)
        assert 1 <= len(server.requests) <= 2  # what was in flight, never retried
        assert all(r.status == 403 for r in server.requests)
        rows = read_manifest(data / "night_to_day_manifest.csv")
        assert {n for n, r in rows.items()} == {name_of(r.marker) for r in server.requests}
        assert all(r.status == "failed" and r.attempts == 1 for r in rows.values())
        assert summary.counts["not_sent"] == 6 - len(server.requests)
    assert not list((data / "converted_day").glob("*.png"))
    assert files_containing(tmp_path, KEY) == []


def test_api_version_v1beta_max_images_and_both_key_spellings(tmp_path, api_key):
    data = tmp_path / "data"
    make_images(data, range(1, 5))
    with GeminiStandIn(KEY) as server:
        summary = night_to_day.run(prep_config(
            gemini_overrides(data, server, api_version="v1beta", max_images=2)))
        assert summary.counts["done"] == 2 and summary.counts["left_by_max_images"] == 2
        assert {r.marker for r in server.requests} == {1, 2}
        assert {r.path.split("/")[1] for r in server.requests} == {"v1beta"}
        assert all(r.body_keys[0] == "contents" for r in server.requests)

        # The stand-in also reads snake_case bodies and a ?key= query, as the REST API does.
        png = (data / "extracted_night" / name_of(3)).read_bytes()
        import base64
        body = {"contents": [{"parts": [
            {"inline_data": {"mime_type": "image/png", "data": base64.b64encode(png).decode()}},
            {"text": "day please"}]}]}
        request = urllib.request.Request(
            f"{server.base_url}/v1beta/models/gemini-2.5-flash-image:generateContent?key={KEY}",
            data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.load(response)
        assert answer["candidates"][0]["content"]["parts"][0]["inlineData"]["mimeType"] == \
            "image/png"
        assert server.requests[-1].marker == 3 and server.requests[-1].key_ok


def test_missing_key_dry_run_and_stale_temporaries(tmp_path, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    data = tmp_path / "data"
    make_images(data, [1, 2])
    with GeminiStandIn(KEY) as server:
        with pytest.raises(MissingAPIKeyError) as info:
            night_to_day.run(prep_config(gemini_overrides(data, server)))
        message = str(info.value)
        assert "GEMINI_API_KEY" in message and "GOOGLE_API_KEY" in message
        assert "converter=local" in message

        summary = night_to_day.run(prep_config(gemini_overrides(data, server, dry_run="true")))
        assert summary.counts["would_send"] == 2 and summary.exit_code == 0
        assert server.requests == []
        assert not (data / "night_to_day_manifest.csv").exists()
        assert not (data / "converted_day").exists()

        monkeypatch.setenv("GOOGLE_API_KEY", KEY)
        day = data / "converted_day"
        day.mkdir()
        stale = [day / f".{name_of(1)}.abc123.tmp", data / ".night_to_day_manifest.csv.x.tmp"]
        for path in stale:
            path.write_bytes(b"half a file")
        summary = night_to_day.run(prep_config(gemini_overrides(data, server)))
        assert summary.counts["done"] == 2
        assert not any(p.exists() for p in stale)
