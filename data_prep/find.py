"""Find each station's nights and which of them had clear sky, from RMS interval files.

Lists every station's ``_detected`` folders under ``source.flux_root`` (optionally only
``find.last_n`` per station, or nights between ``find.since`` and ``find.until``), fetches
each folder's ``flux_time_intervals.json`` with ``find.workers`` parallel connections into
``find.interval_dir`` as ``{_detected folder}_flux_time_intervals.json``, moves all-cloudy
ones into ``all_cloudy_time_intervals/``, and writes ``good_weather_dates.json`` (nights with
at least one clear interval) and ``nights.csv`` (one row per station-night). Files already
fetched are not fetched again; a folder without an interval file is counted, not failed.
"""

from __future__ import annotations

import csv
import io
import logging
import posixpath
import time
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import hydra
from omegaconf import DictConfig

from data_prep.download import DownloadJob, fetch_all, settings_from_config
from data_prep.filter_cloudy import ALL_CLOUDY_DIR, move_all_cloudy
from data_prep.host_keys import HostKeyError
from data_prep.source import (
    RemoteEntry,
    RemoteSource,
    SourceError,
    SourceUnreachable,
    UnsafeNameError,
    check_remote_name,
    source_factory,
)
from data_prep.summary import StepSummary, run_step
from gmn_base.atomic import write_json, write_text
from gmn_base.formats import (
    INTERVAL_FILE_NAME,
    ClearIntervals,
    DetectedFolder,
    GMNFormatError,
    format_night,
    load_interval_file,
    parse_detected_folder,
    parse_night,
    parse_station,
)

log = logging.getLogger(__name__)

NIGHTS_COLUMNS = ["station", "night", "detected_folders", "interval_files", "interval_count",
                  "clear_minutes", "all_cloudy"]


@dataclass(frozen=True)
class NightRow:
    station: str
    night: str
    detected_folders: tuple[str, ...]
    interval_files: tuple[str, ...]
    interval_count: int
    clear_minutes: float

    @property
    def all_cloudy(self) -> bool:
        return self.interval_count == 0


# --- pure core ------------------------------------------------------------------------------


def safe_names(entries: list[RemoteEntry], where: str) -> tuple[list[RemoteEntry], list[str]]:
    """Split a listing into usable entries and rejection messages for unsafe names."""
    good, rejected = [], []
    for entry in entries:
        try:
            check_remote_name(entry.name, where)
            good.append(entry)
        except UnsafeNameError as exc:
            rejected.append(str(exc))
    return good, rejected


def station_folders(names: list[str]) -> list[str]:
    """The names that are GMN station ids (other folders on the server are ignored)."""
    stations = []
    for name in names:
        try:
            stations.append(parse_station(name))
        except GMNFormatError:
            log.debug("not a station folder: %s", name)
    return sorted(stations)


def select_detected(names: list[str], station: str, since: date | None = None,
                    until: date | None = None, last_n: int | None = None) -> list[DetectedFolder]:
    """The station's ``_detected`` folders among ``names``, oldest first, within the night range,
    then the newest ``last_n`` of them. Names of other shapes or stations are ignored."""
    folders = []
    for name in names:
        try:
            folder = parse_detected_folder(name)
        except GMNFormatError:
            log.debug("not a _detected folder: %s", name)
            continue
        if folder.station != station:
            continue
        if (since and folder.night < since) or (until and folder.night > until):
            continue
        folders.append(folder)
    folders.sort(key=lambda f: f.start)
    if last_n is not None:
        folders = folders[-last_n:] if last_n > 0 else []
    return folders


def interval_file_name(detected_folder: str) -> str:
    """Local name of a night's interval file: the ``_detected`` folder name kept in front."""
    return f"{detected_folder}_{INTERVAL_FILE_NAME}"


def night_rows(found: list[tuple[DetectedFolder, str, ClearIntervals]]) -> list[NightRow]:
    """One row per station-night from (folder, local file, intervals); several ``_detected``
    folders of one night (RMS restarted) are merged."""
    groups: dict[tuple[str, date], list[tuple[DetectedFolder, str, ClearIntervals]]] = {}
    for item in found:
        groups.setdefault((item[0].station, item[0].night), []).append(item)
    rows = []
    for (station, night), items in sorted(groups.items()):
        items.sort(key=lambda i: i[0].start)
        rows.append(NightRow(
            station, format_night(night),
            tuple(i[0].name for i in items), tuple(i[1] for i in items),
            sum(len(i[2].intervals) for i in items),
            round(sum(i[2].clear_minutes() for i in items), 1)))
    return rows


def good_weather_dates(rows: list[NightRow], stations: list[str]) -> dict[str, list[str]]:
    dates: dict[str, list[str]] = {station: [] for station in stations}
    for row in rows:
        if not row.all_cloudy:
            dates.setdefault(row.station, []).append(row.night)
    return {station: sorted(nights) for station, nights in sorted(dates.items())}


def nights_csv_text(rows: list[NightRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(NIGHTS_COLUMNS)
    for r in rows:
        writer.writerow([r.station, r.night, ";".join(r.detected_folders), ";".join(r.interval_files),
                         r.interval_count, r.clear_minutes, str(r.all_cloudy).lower()])
    return out.getvalue()


def read_nights_csv(path: Path) -> list[NightRow]:
    """Rows of a ``nights.csv`` written by this step (plan reads it)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `python -m data_prep.find` first")
    rows = []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = set(NIGHTS_COLUMNS) - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
        for lineno, r in enumerate(reader, start=2):
            where = f"{path}:{lineno}"
            rows.append(NightRow(
                parse_station(r["station"], where), format_night(parse_night(r["night"], where)),
                tuple(filter(None, r["detected_folders"].split(";"))),
                tuple(filter(None, r["interval_files"].split(";"))),
                int(r["interval_count"]), float(r["clear_minutes"])))
    return rows


# --- I/O edges ------------------------------------------------------------------------------


def report_rejected(rejected: list[str], summary: StepSummary) -> None:
    for message in rejected:
        summary.add_failure(message)
        summary.count("rejected_names")


def list_stations(source: RemoteSource, flux_root: str, configured: list[str],
                  summary: StepSummary) -> list[str]:
    if configured:
        return [parse_station(str(s), "source.stations") for s in configured]
    try:
        listing = source.listdir(flux_root)
    except FileNotFoundError:
        summary.add_failure(f"source.flux_root {flux_root!r} not found on {source.description}")
        return []
    entries, rejected = safe_names(listing, flux_root)
    report_rejected(rejected, summary)
    stations = station_folders([e.name for e in entries])
    if not stations:
        summary.add_failure(f"no station folders under {flux_root} on {source.description}: "
                            f"check source.flux_root, or list them in source.stations")
    return stations


def run(cfg: DictConfig) -> StepSummary:
    started = time.monotonic()
    summary = StepSummary("find")
    fcfg, scfg = cfg.find, cfg.source
    interval_dir = Path(str(fcfg.interval_dir))
    cloudy_dir = interval_dir / ALL_CLOUDY_DIR
    since = parse_night(fcfg.since, "find.since") if fcfg.get("since") else None
    until = parse_night(fcfg.until, "find.until") if fcfg.get("until") else None
    last_n = int(fcfg.last_n) if fcfg.get("last_n") is not None else None
    flux_root = str(scfg.flux_root)
    factory = source_factory(scfg)

    selected: list[DetectedFolder] = []
    try:
        source = factory()
    except (SourceError, HostKeyError, SourceUnreachable) as exc:
        summary.add_failure(str(exc))
        return summary
    try:
        stations = list_stations(source, flux_root, list(scfg.get("stations") or []), summary)
        for station in stations:
            station_dir = posixpath.join(flux_root, station)
            try:
                entries, rejected = safe_names(source.listdir(station_dir), station_dir)
            except FileNotFoundError:
                summary.add_failure(f"{station_dir} not found on {source.description} "
                                    f"(station {station} in source.stations?)")
                continue
            report_rejected(rejected, summary)
            chosen = select_detected([e.name for e in entries], station, since, until, last_n)
            summary.count("detected_folders", len(chosen))
            selected.extend(chosen)
    finally:
        source.close()

    jobs = []
    for folder in selected:
        name = interval_file_name(folder.name)
        if (interval_dir / name).exists() or (cloudy_dir / name).exists():
            summary.count("already_fetched")
            continue
        remote = posixpath.join(flux_root, folder.station, folder.name, INTERVAL_FILE_NAME)
        jobs.append(DownloadJob(remote, interval_dir / name))
    interval_dir.mkdir(parents=True, exist_ok=True)
    try:
        settings = replace(settings_from_config(cfg.download), workers=int(fcfg.workers))
        results = fetch_all(jobs, factory, settings, description="interval files",
                            expect_small=True)
    except (SourceError, HostKeyError, SourceUnreachable) as exc:
        summary.add_failure(str(exc))
        return summary
    for result in results:
        if result.status == "downloaded":
            summary.count("fetched")
        elif result.status == "missing":
            log.info("no %s in %s", INTERVAL_FILE_NAME, posixpath.dirname(result.job.remote_path))
        elif result.status == "failed":
            summary.add_failure(result.error)

    moved = move_all_cloudy(interval_dir)
    summary.count("moved_all_cloudy", len(moved.moved))

    found = []
    for folder in selected:
        name = interval_file_name(folder.name)
        path = next((p for p in (interval_dir / name, cloudy_dir / name) if p.exists()), None)
        if path is None:
            summary.count("no_interval_file")
            continue
        try:
            intervals = load_interval_file(path)
        except GMNFormatError as exc:
            summary.add_failure(str(exc))
            continue
        if intervals.station != folder.station:
            summary.add_failure(f"{path}: stationID {intervals.station!r} does not match the "
                                f"folder's station {folder.station!r}")
            continue
        found.append((folder, str(path.relative_to(interval_dir)), intervals))

    rows = night_rows(found)
    good = good_weather_dates(rows, sorted({f.station for f in selected}))
    write_json(Path(str(fcfg.good_weather_dates)), good)
    write_text(Path(str(fcfg.nights_csv)), nights_csv_text(rows))
    summary.count("station_nights", len(rows))
    summary.count("good_nights", sum(not r.all_cloudy for r in rows))
    summary.count("all_cloudy_nights", sum(r.all_cloudy for r in rows))
    summary.outputs.update({"intervals": str(interval_dir), "nights": str(fcfg.nights_csv),
                            "good_weather_dates": str(fcfg.good_weather_dates)})
    summary.seconds = time.monotonic() - started
    return summary


@hydra.main(version_base="1.3", config_path="../conf", config_name="prep")
def main(cfg: DictConfig) -> None:
    run_step("find", run, cfg, log, user_errors=(SourceError, HostKeyError, ValueError))


if __name__ == "__main__":
    main()
