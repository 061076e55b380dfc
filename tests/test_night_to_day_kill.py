"""SIGKILL of the real command mid-run: no partial PNG, a manifest that parses, and a restart
that sends nothing for the images the manifest already lists as done. Also the missing-key
message as the command line shows it, and that the key reaches no file (Hydra's saved
config and log included)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from fixtures_gemini import (
    REPO,
    GeminiStandIn,
    files_containing,
    gemini_overrides,
    make_night_image,
    prep_config,
)
from PIL import Image

from data_prep import night_to_day
from data_prep.converters.night_to_day_manifest import read_manifest

KEY = "AIzaKILLTEST-5b1d0c8a"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    env.update(extra)
    return env


def test_sigkill_mid_run_then_restart_resends_nothing_done(tmp_path, monkeypatch):
    data = tmp_path / "data"
    names = {}
    for marker in range(1, 11):
        name = f"US0001_20251107_0100{marker:02d}_000.png"
        make_night_image(data / "extracted_night" / name, marker)
        names[marker] = name
    manifest_path = data / "night_to_day_manifest.csv"
    with GeminiStandIn(KEY, image_delay_s=0.4) as server:
        command = [sys.executable, "-m", "data_prep.night_to_day",
                   *gemini_overrides(data, server, concurrency=2)]
        proc = subprocess.Popen(command, cwd=REPO, env=_env(GEMINI_API_KEY=KEY),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            done_before_kill: set[str] = set()
            while time.monotonic() < deadline and len(done_before_kill) < 3:
                time.sleep(0.05)
                if manifest_path.exists():
                    done_before_kill = {n for n, r in read_manifest(manifest_path).items()
                                        if r.status == "done"}
            assert proc.poll() is None, "the run ended before it could be killed"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == -signal.SIGKILL

        rows = read_manifest(manifest_path)  # parses: never a torn file
        done = {n for n, r in rows.items() if r.status == "done"}
        assert len(done) >= 3 and len(done) < 10
        day = data / "converted_day"
        for png in day.glob("*.png"):  # every visible PNG is whole
            with Image.open(png) as img:
                img.load()
                assert img.size == (32, 18)
        assert {p.name for p in day.glob("*.png")} >= done

        server.reset_log()
        server.image_delay_s = 0.0
        monkeypatch.setenv("GEMINI_API_KEY", KEY)
        monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
        summary = night_to_day.run(prep_config(gemini_overrides(data, server)))
        resent = {names[r.marker] for r in server.requests}
        assert resent.isdisjoint(done)
        assert summary.counts["skipped_done"] == len(done)
        assert summary.counts["done"] == 10 - len(done) and summary.exit_code == 0
        assert sorted(p.name for p in day.iterdir()) == sorted(names.values())  # no temporaries
        assert all(r.status == "done" for r in read_manifest(manifest_path).values())

    hydra_runs = list((data / "logs" / "night_to_day").glob("*/.hydra/config.yaml"))
    assert hydra_runs, "the command saved its Hydra config"
    assert files_containing(tmp_path, KEY) == []


def test_command_without_key_names_both_variables(tmp_path):
    data = tmp_path / "data"
    make_night_image(data / "extracted_night" / "US0001_20251107_010001_000.png", 1)
    result = subprocess.run(
        [sys.executable, "-m", "data_prep.night_to_day", "converter=gemini",
         f"paths.data_dir={data}"],
        check=False, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "GEMINI_API_KEY" in result.stdout and "GOOGLE_API_KEY" in result.stdout
    assert "converter=local" in result.stdout
    assert not (data / "converted_day").exists()
