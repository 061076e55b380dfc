"""Pure parts of the Gemini converter and the manifest: response interpretation, the star
answer, the key lookup, settings, the work plan and the manifest format."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures_gemini import prep_config
from google.genai import types

from data_prep import night_to_day
from data_prep.converters.gemini_answers import interpret_image_response, parse_star_answer
from data_prep.converters.gemini_settings import (
    GeminiSettings,
    MissingAPIKeyError,
    api_key_from_env,
    redactor,
    settings_from_config,
)
from data_prep.converters.local_day_style import LOCAL_MODEL
from data_prep.converters.night_to_day_manifest import (
    ManifestError,
    ManifestRow,
    format_manifest,
    parse_manifest,
    plan_work,
)

PNG = b"\x89PNG\r\n\x1a\n-not-decoded-here"


def response(**fields) -> types.GenerateContentResponse:
    return types.GenerateContentResponse.model_validate(fields)


def candidate(parts, finish="STOP"):
    return {"content": {"role": "model", "parts": parts}, "finish_reason": finish}


def image_part(data=PNG, thought=None):
    part = {"inline_data": {"mime_type": "image/png", "data": data}}
    if thought is not None:
        part["thought"] = thought
    return part


def test_final_image_is_taken_and_thought_images_ignored():
    answer = interpret_image_response(response(candidates=[candidate(
        [image_part(b"thought-1", thought=True), {"text": "thinking", "thought": True},
         {"text": "Here it is"}, image_part(b"final")])]))
    assert (answer.kind, answer.data, answer.mime_type) == ("image", b"final", "image/png")
    only_thoughts = interpret_image_response(response(candidates=[candidate(
        [image_part(b"thought-1", thought=True)])]))
    assert only_thoughts.kind == "no_image"


@pytest.mark.parametrize("fields,reason", [
    ({"prompt_feedback": {"block_reason": "PROHIBITED_CONTENT"}}, "PROHIBITED_CONTENT"),
    ({"candidates": [candidate([{"text": "cannot"}], "IMAGE_SAFETY")]}, "IMAGE_SAFETY"),
    ({"candidates": [{"finish_reason": "PROHIBITED_CONTENT"}]}, "PROHIBITED_CONTENT"),
    ({"candidates": [candidate([], "SAFETY")]}, "SAFETY"),
])
def test_refusals_are_blocked(fields, reason):
    answer = interpret_image_response(response(**fields))
    assert answer.kind == "blocked" and reason in answer.reason


def test_text_only_and_empty_answers_are_no_image():
    text_only = interpret_image_response(response(candidates=[candidate(
        [{"text": "A sunny day over the hills."}])]))
    assert text_only.kind == "no_image" and "sunny day" in text_only.reason
    assert interpret_image_response(response()).kind == "no_image"
    other = interpret_image_response(response(candidates=[candidate([], "IMAGE_OTHER")]))
    assert other.kind == "no_image" and "IMAGE_OTHER" in other.reason


@pytest.mark.parametrize("text,expected", [
    ("NO_STARS", False), ("HAS_STARS", True), ("has_stars.", True), ("Answer: NO_STARS\n", False),
    ("maybe", None), ("", None), (None, None), ("HAS_STARS or NO_STARS", None)])
def test_star_answer(text, expected):
    assert parse_star_answer(text) is expected


def test_api_key_from_environment_only():
    assert api_key_from_env({"GEMINI_API_KEY": "g"}) == "g"
    assert api_key_from_env({"GOOGLE_API_KEY": "o", "GEMINI_API_KEY": "g"}) == "o"  # as the SDK
    with pytest.raises(MissingAPIKeyError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        api_key_from_env({"GEMINI_API_KEY": ""})
    assert redactor("s3cr3t")("HTTP 400 key=s3cr3t bad") == "HTTP 400 key=[redacted] bad"


def test_settings_from_the_shipped_config():
    cfg = prep_config(["converter=gemini"])
    settings = settings_from_config(cfg.converter)
    assert settings.image_model == "gemini-2.5-flash-image"
    assert settings.check_model == "gemini-2.5-flash"
    assert settings.base_url is None and settings.api_version is None
    assert "HAS_STARS" in settings.prompts.check and "NO_STARS" in settings.prompts.check
    assert len(settings.prompt_hash) == 12
    changed = settings_from_config(prep_config(
        ["converter=gemini", "converter.prompts.day=Make it noon."]).converter)
    assert changed.prompt_hash != settings.prompt_hash
    assert "api_key" not in cfg.converter and "key" not in cfg.converter
    forced = prep_config(["converter=gemini", "+converter.api_key=abc"])
    with pytest.raises(ValueError, match="read only from GEMINI_API_KEY or GOOGLE_API_KEY"):
        night_to_day.run(forced)


def row(name, status, model="gemini-2.5-flash-image", attempts=2):
    return ManifestRow(name, status, attempts, True, False, model, "abc", "")


def test_plan_skips_done_and_blocked_and_local_never_replaces_gemini():
    names = ["a.png", "b.png", "c.png", "d.png", "e.png", "f.png"]
    manifest = {"a.png": row("a.png", "done"), "b.png": row("b.png", "blocked"),
                "c.png": row("c.png", "failed"), "d.png": row("d.png", "done", LOCAL_MODEL),
                "e.png": row("e.png", "done")}
    outputs = {"a.png", "d.png"}  # e.png's PNG was deleted: convert it again
    plan = plan_work(names, manifest, local=False, retry_blocked=False, outputs=outputs,
                     max_images=None)
    assert plan.todo == ["c.png", "d.png", "e.png", "f.png"]
    assert (plan.skipped_done, plan.skipped_blocked, plan.capped) == (1, 1, 0)
    plan = plan_work(names, manifest, local=False, retry_blocked=True, outputs=outputs,
                     max_images=2)
    assert plan.todo == ["b.png", "c.png"] and plan.capped == 3
    local = plan_work(names, manifest, local=True, retry_blocked=False, outputs=outputs,
                      max_images=None)
    # converter=local keeps a Gemini image (a.png: paid for) but may style a Gemini-blocked one.
    assert local.todo == ["b.png", "c.png", "e.png", "f.png"]
    assert (local.skipped_done, local.skipped_blocked) == (2, 0)


def test_manifest_round_trip_and_errors():
    rows = {"b.png": ManifestRow("b.png", "failed", 3, False, False, "m", "h",
                                 'HTTP 503 UNAVAILABLE: "overloaded", try later'),
            "a.png": row("a.png", "done")}
    text = format_manifest(rows)
    assert text.splitlines()[0] == \
        "image_filename,status,attempts,verified,corrected,model,prompt_hash,error"
    assert text.splitlines()[1].startswith("a.png,done,2,true,false,")
    assert parse_manifest(text, Path("m.csv")) == rows
    with pytest.raises(ManifestError, match="m.csv line 2"):
        parse_manifest(text.replace("a.png,done", "a.png,maybe"), Path("m.csv"))
    with pytest.raises(ManifestError, match="header"):
        parse_manifest("name,status\nx,done\n", Path("m.csv"))
    with pytest.raises(ManifestError, match="line 4"):
        parse_manifest(text.rstrip("\n") + "\nc.png,done\n", Path("m.csv"))
    assert parse_manifest("", Path("m.csv")) == {}


def test_errors_that_stop_the_whole_run():
    import threading

    from google.genai import errors

    from data_prep.converters.gemini import GeminiDayConverter
    from data_prep.converters.gemini_settings import Prompts
    from data_prep.converters.rate_limit import RequestPacer

    settings = GeminiSettings(prompts=Prompts("d", "c", "x"))
    converter = GeminiDayConverter(None, settings, RequestPacer(None), threading.Event(),
                                   redactor("k3y"))

    def error(code, status, message, details=None):
        return errors.APIError(code, {"error": {"code": code, "status": status,
                                                "message": message, "details": details or []}})

    invalid = error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
                    [{"reason": "API_KEY_INVALID"}])
    assert "rejected the API key" in converter._fatal_message(invalid, "day request")
    assert "rejected" in converter._fatal_message(error(403, "PERMISSION_DENIED", "no"), "x")
    missing = converter._fatal_message(error(404, "NOT_FOUND", "models/x is not found"), "x")
    assert "converter.image_model" in missing
    assert converter._fatal_message(error(400, "INVALID_ARGUMENT", "bad image"), "x") is None
    assert converter._fatal_message(error(429, "RESOURCE_EXHAUSTED", "slow down"), "x") is None
    leaked = converter._fatal_message(error(401, "UNAUTHENTICATED", "key k3y is bad"), "x")
    assert "k3y" not in leaked and "[redacted]" in leaked


def test_run_engine_records_each_outcome_once_and_a_fatal_one_stops_the_run(tmp_path):
    import threading

    from data_prep.converters.gemini import Conversion, GeminiDayConverter
    from data_prep.converters.gemini_run import GeminiRun
    from data_prep.converters.gemini_settings import Prompts
    from data_prep.converters.night_to_day_manifest import ManifestWriter, read_manifest
    from data_prep.converters.rate_limit import RequestPacer
    from data_prep.summary import StepSummary

    settings = GeminiSettings(prompts=Prompts("d", "c", "x"))
    converter = GeminiDayConverter(None, settings, RequestPacer(None), threading.Event(),
                                   redactor("k3y"))
    manifest = tmp_path / "night_to_day_manifest.csv"
    writer = ManifestWriter(manifest, {"s.png": row("s.png", "failed", attempts=3)})
    summary = StepSummary("night_to_day")
    run = GeminiRun(converter, tmp_path / "night", tmp_path / "day", writer, summary)

    run.record("u.png", None, "unreadable image: truncated")
    run.record("s.png", Conversion("stopped", requests=2), "")  # money spent: counted
    run.record("n.png", Conversion("stopped"), "")  # nothing sent: no row
    run.record("b.png", Conversion("blocked", requests=1, notes=["finish reason SAFETY"]), "")
    run.record("d.png", Conversion("done", requests=2, verified=True), "")
    assert not converter.stop.is_set() and run.fatal is None
    rejected = "the Gemini API rejected the API key k3y (HTTP 401)"
    run.record("f.png", Conversion("failed", fatal=rejected, requests=1, notes=[rejected]), "")
    writer.flush()

    assert converter.stop.is_set()  # every worker stops before its next request
    assert run.fatal == "the Gemini API rejected the API key [redacted] (HTTP 401)"
    rows = read_manifest(manifest)
    assert {n: (r.status, r.attempts) for n, r in rows.items()} == {
        "u.png": ("failed", 0), "s.png": ("failed", 5), "b.png": ("blocked", 1),
        "d.png": ("done", 2), "f.png": ("failed", 1)}
    assert rows["d.png"].verified and rows["f.png"].prompt_hash == settings.prompt_hash
    assert "k3y" not in manifest.read_text()
    assert summary.counts == {"failed": 3, "requests": 6, "not_sent": 1, "blocked": 1, "done": 1}
    # one failure per image that failed on its own; the fatal error is the run's, added once
    assert summary.failures == [f"{tmp_path / 'night' / 'u.png'}: unreadable image: truncated"]
