"""Label review round trip: sidecar files a person renames, turned into label overrides.

``create`` takes a predictions CSV (``filename,prediction,confidence,prob_clear`` from
``predict.py``) and writes one empty sidecar ``{stem}.{prediction}.txt`` beside each image
(the reference pipeline's ``create_label_files``), plus ``review_index.csv`` recording what
each sidecar said when it was made. A person browses the folder and renames the sidecars
that are wrong (``.clear.txt`` <-> ``.cloudy.txt``) or marks images to drop
(``.remove.txt``). ``apply`` reads the sidecars back, compares them with the index and writes
``label_overrides.csv`` (``image_filename,label``, label ``clear``/``cloudy``/``remove``),
which training applies with ``data.label_overrides=...``. Ambiguous sidecars (two for one
image, an unknown suffix, a missing label) stop ``apply`` with a message naming each file;
nothing is written until they are fixed.
"""

from __future__ import annotations

import logging
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import hydra
import pandas as pd
from omegaconf import DictConfig

from data_prep.summary import StepSummary, run_step
from gmn_base.atomic import write_csv
from gmn_base.command_line import guard_secrets

log = logging.getLogger("data_prep.review")

PREDICTED_LABELS = ("clear", "cloudy")
REVIEW_LABELS = ("clear", "cloudy", "remove")
SIDECAR_SUFFIX = ".txt"
INDEX_NAME = "review_index.csv"
OVERRIDES_NAME = "label_overrides.csv"
INDEX_COLUMNS = ["image_filename", "prediction", "prob_clear", "sidecar"]
OVERRIDE_COLUMNS = ["image_filename", "label"]
WRITE_MODES = ("changed", "all")
# Keys of the review group that may be given bare on the command line (`images=DIR`).
_BARE_KEYS = ("action", "input", "images", "index", "overrides", "write")
_ACTIONS = ("create", "apply")


class ReviewError(ValueError):
    """A review input that cannot be used as it is; the message says what to change."""


@dataclass(frozen=True)
class ReviewItem:
    """One image under review: where it is (relative to the images folder) and what the
    model said when its sidecar was made."""

    image: str  # path relative to the images folder, POSIX separators
    prediction: str
    prob_clear: float | None

    @property
    def image_filename(self) -> str:
        return Path(self.image).name

    @property
    def stem(self) -> str:
        return Path(self.image).stem

    @property
    def key(self) -> str:
        """The image's path without extension: what its sidecars start with."""
        return Path(self.image).with_suffix("").as_posix()

    @property
    def sidecar(self) -> str:
        return sidecar_name(self.image, self.prediction)


@dataclass(frozen=True)
class Sidecar:
    """A ``.txt`` file found beside the images, split into image stem and label suffix."""

    path: str  # relative to the images folder, POSIX separators
    stem: str
    label: str | None  # lower-cased suffix; None for a bare ``{stem}.txt``


@dataclass(frozen=True)
class ReviewDecision:
    image_filename: str
    prediction: str
    label: str  # clear | cloudy | remove

    @property
    def changed(self) -> bool:
        return self.label != self.prediction


@dataclass
class ReviewResult:
    decisions: list[ReviewDecision]
    problems: list[str]
    unreviewed: list[str]  # image names whose sidecar is gone


# --- pure core ----------------------------------------------------------------------------


def sidecar_name(image: str, label: str) -> str:
    """``sub/CAWEC2_20251106_223015_012.png`` + ``clear`` -> ``sub/CAWEC2_..._012.clear.txt``."""
    path = Path(image)
    return (path.parent / f"{path.stem}.{label}{SIDECAR_SUFFIX}").as_posix()


def parse_sidecar(path: str) -> Sidecar:
    """Split ``{stem}.{label}.txt``; the label is lower-cased so ``.Clear.txt`` still counts."""
    rel = Path(path)
    base = rel.name[: -len(SIDECAR_SUFFIX)]
    parent = rel.parent.as_posix()
    prefix = "" if parent == "." else parent + "/"
    stem, dot, label = base.rpartition(".")
    if not dot:
        return Sidecar(rel.as_posix(), prefix + base, None)
    return Sidecar(rel.as_posix(), prefix + stem, label.strip().lower())


def review_items(predictions: pd.DataFrame, image_paths: Mapping[str, str], source: str) -> tuple[list[ReviewItem], list[str]]:
    """Match prediction rows to images; return the items and one message per unusable row.

    ``image_paths`` maps each image's file name to its path relative to the images folder.
    A row whose prediction is not clear/cloudy (predict.py reports unreadable images that
    way) or whose image is not in the folder is reported, not guessed.
    """
    missing = [c for c in ("filename", "prediction") if c not in predictions.columns]
    if missing:
        raise ReviewError(
            f"{source}: missing column(s) {', '.join(missing)}; expected predict.py's "
            "filename,prediction,confidence,prob_clear"
        )
    items: list[ReviewItem] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for row_number, row in enumerate(predictions.itertuples(index=False), start=2):
        name = Path(str(row.filename)).name
        prediction = str(row.prediction).strip().lower()
        where = f"{source}:{row_number}"
        if prediction not in PREDICTED_LABELS:
            error = getattr(row, "error", None)
            why = (f"could not be predicted ({error})" if isinstance(error, str) and error
                   else f"has prediction {row.prediction!r} (expected one of "
                        f"{', '.join(PREDICTED_LABELS)})")
            problems.append(f"{where}: {name} {why}; no sidecar made")
            continue
        if name not in image_paths:
            problems.append(f"{where}: image {name} is not in the images folder")
            continue
        if name in seen:
            problems.append(f"{where}: {name} is predicted twice (first at row {seen[name]}); "
                            "the first row is used")
            continue
        seen[name] = row_number
        prob = getattr(row, "prob_clear", None)
        prob_clear = None if prob is None or pd.isna(prob) else float(prob)
        items.append(ReviewItem(image_paths[name], prediction, prob_clear))
    return items, problems


def index_frame(items: Iterable[ReviewItem]) -> pd.DataFrame:
    rows = [
        {"image_filename": item.image, "prediction": item.prediction,
         "prob_clear": item.prob_clear, "sidecar": item.sidecar}
        for item in items
    ]
    return pd.DataFrame(rows, columns=INDEX_COLUMNS)


def items_from_index(index: pd.DataFrame, source: str) -> list[ReviewItem]:
    missing = [c for c in ("image_filename", "prediction") if c not in index.columns]
    if missing:
        raise ReviewError(f"{source}: missing column(s) {', '.join(missing)}; "
                          "was it written by `python -m data_prep.review create`?")
    items = []
    for row in index.itertuples(index=False):
        prob = getattr(row, "prob_clear", None)
        items.append(ReviewItem(str(row.image_filename), str(row.prediction),
                                None if prob is None or pd.isna(prob) else float(prob)))
    return items


def decide(items: Sequence[ReviewItem], sidecar_paths: Iterable[str]) -> ReviewResult:
    """Read each image's label from its sidecar(s).

    Exactly one sidecar with a known label per image is a decision; two or more, an unknown
    suffix or no suffix at all is a problem naming the files; no sidecar at all means the
    image was left out of the review (it keeps its label).
    """
    by_stem: dict[str, list[Sidecar]] = defaultdict(list)
    for path in sidecar_paths:
        sidecar = parse_sidecar(path)
        by_stem[sidecar.stem].append(sidecar)
    decisions: list[ReviewDecision] = []
    problems: list[str] = []
    unreviewed: list[str] = []
    for item in items:
        found = by_stem.get(item.key, [])
        if not found:
            unreviewed.append(item.image)
            continue
        names = ", ".join(sorted(s.path for s in found))
        if len(found) > 1:
            problems.append(f"{item.image}: {len(found)} sidecars ({names}); keep exactly one")
            continue
        label = found[0].label
        if label is None:
            problems.append(f"{item.image}: sidecar {names} has no label; rename it to "
                            f"{item.stem}.<{'|'.join(REVIEW_LABELS)}>.txt")
        elif label not in REVIEW_LABELS:
            problems.append(f"{item.image}: sidecar {names} has unknown label {label!r}; "
                            f"use one of {', '.join(REVIEW_LABELS)}")
        else:
            decisions.append(ReviewDecision(item.image_filename, item.prediction, label))
    return ReviewResult(decisions, problems, unreviewed)


def overrides_frame(decisions: Iterable[ReviewDecision], write: str = "changed") -> pd.DataFrame:
    """``changed``: only sidecars a person renamed; ``all``: every reviewed image's label."""
    if write not in WRITE_MODES:
        raise ReviewError(f"review.write={write!r}: use one of {', '.join(WRITE_MODES)}")
    rows = [
        {"image_filename": d.image_filename, "label": d.label}
        for d in decisions
        if write == "all" or d.changed
    ]
    return pd.DataFrame(rows, columns=OVERRIDE_COLUMNS)


def normalise_argv(argv: Sequence[str]) -> list[str]:
    """Accept the short forms users type: ``create``/``apply`` as the first bare word and
    ``images=DIR`` for ``review.images=DIR`` (likewise input, index, overrides, write)."""
    out: list[str] = []
    if not any(arg.startswith("hydra/help=") for arg in argv):
        out.append("hydra/help=review")
    for arg in argv:
        if arg in _ACTIONS:
            out.append(f"review.action={arg}")
            continue
        key, eq, value = arg.partition("=")
        if eq and key in _BARE_KEYS:
            out.append(f"review.{key}={value}")
        else:
            out.append(arg)
    return out


# --- I/O edges ----------------------------------------------------------------------------


def _images_in(folder: Path) -> dict[str, str]:
    """File name -> path relative to ``folder`` for every PNG/JPEG below it."""
    found: dict[str, str] = {}
    duplicates: list[str] = []
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in (".png", ".jpg", ".jpeg") or not path.is_file():
            continue
        rel = path.relative_to(folder).as_posix()
        if path.name in found:
            duplicates.append(f"{found[path.name]} and {rel}")
        found[path.name] = rel
    if duplicates:
        raise ReviewError(f"{folder}: image names must be unique (training labels use the "
                          f"file name): {'; '.join(duplicates[:5])}")
    return found


def _sidecars_in(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob(f"*{SIDECAR_SUFFIX}")
                  if p.is_file())


def _review_paths(cfg: DictConfig) -> tuple[Path, Path, Path]:
    review = cfg.review
    if not review.get("images"):
        raise ReviewError("review.images is not set: give the folder under review, "
                          "e.g. `images=demo_data/extracted_day`")
    images = Path(review.images)
    if not images.is_dir():
        raise ReviewError(f"images={images}: no such folder")
    index = Path(review.index) if review.get("index") else images / INDEX_NAME
    overrides = Path(review.overrides) if review.get("overrides") else images / OVERRIDES_NAME
    return images, index, overrides


def create(cfg: DictConfig) -> StepSummary:
    summary = StepSummary("review create")
    images, index_path, _ = _review_paths(cfg)
    if not cfg.review.get("input"):
        raise ReviewError("review create needs input=<predictions.csv> (written by predict.py)")
    predictions_path = Path(cfg.review.input)
    if not predictions_path.is_file():
        raise ReviewError(f"input={predictions_path}: no such file")
    predictions = pd.read_csv(predictions_path)
    items, problems = review_items(predictions, _images_in(images), str(predictions_path))
    for message in problems:
        summary.add_failure(message)

    # A rerun never overwrites a sidecar (a person may have renamed it already) and keeps
    # the index row it was made from, so `apply` still sees what the model said then.
    previous: dict[str, ReviewItem] = {}
    if index_path.is_file():
        previous = {it.image: it for it in items_from_index(pd.read_csv(index_path), str(index_path))}
    existing = {parse_sidecar(p).stem for p in _sidecars_in(images)}
    kept: list[ReviewItem] = []
    for item in items:
        if item.key in existing:
            kept.append(previous.get(item.image, item))
            summary.count("sidecars_kept")
            continue
        (images / item.sidecar).touch()
        kept.append(item)
        summary.count(f"sidecars_{item.prediction}")
    write_csv(index_path, index_frame(kept))
    summary.outputs["index"] = str(index_path)
    summary.outputs["sidecars"] = str(images)
    return summary


def apply(cfg: DictConfig) -> StepSummary:
    summary = StepSummary("review apply")
    images, index_path, overrides_path = _review_paths(cfg)
    if not index_path.is_file():
        raise ReviewError(f"{index_path}: no review index; run "
                          f"`python -m data_prep.review create input=... images={images}` first")
    items = items_from_index(pd.read_csv(index_path), str(index_path))
    result = decide(items, _sidecars_in(images))
    if result.unreviewed:
        summary.count("no_sidecar", len(result.unreviewed))
        log.warning("%d image(s) have no sidecar any more and keep their label, e.g. %s",
                    len(result.unreviewed), ", ".join(result.unreviewed[:3]))
    if result.problems:
        for message in result.problems:
            summary.add_failure(message)
        log.error("%s not written: fix the sidecars named below and rerun", overrides_path)
        return summary
    for decision in result.decisions:
        summary.count("confirmed" if not decision.changed else
                      ("removed" if decision.label == "remove" else "relabelled"))
    write_csv(overrides_path, overrides_frame(result.decisions, cfg.review.get("write", "changed")))
    summary.outputs["label_overrides"] = str(overrides_path)
    return summary


def run(cfg: DictConfig) -> StepSummary:
    action = cfg.review.get("action")
    if action == "create":
        return create(cfg)
    if action == "apply":
        return apply(cfg)
    raise ReviewError(f"review.action={action!r}: say `create` or `apply`, e.g. "
                      "`python -m data_prep.review create input=predictions.csv images=DIR`")


def _run_and_say_how_to_train(cfg: DictConfig) -> StepSummary:
    summary = run(cfg)
    if summary.ok and "label_overrides" in summary.outputs:
        print(f"label overrides: {summary.outputs['label_overrides']} "
              f"(train with data.label_overrides={summary.outputs['label_overrides']})")
    return summary


@guard_secrets
@hydra.main(version_base="1.3", config_path="../conf", config_name="prep")
def main(cfg: DictConfig) -> None:
    # A ReviewError names the input or setting to fix: exit 2, no traceback.
    run_step("review", _run_and_say_how_to_train, cfg, log, user_errors=(ReviewError,))


if __name__ == "__main__":
    sys.argv[1:] = normalise_argv(sys.argv[1:])
    main()
