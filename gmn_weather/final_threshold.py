"""The decision threshold ``final/model.json`` embeds: where it comes from, and keeping it in
step with an experiment pooled again under another rule.

The export takes the threshold from the experiment's ``operating_point.json`` when that was
made under the final model's configuration (else 0.5, and says why). ``python analyze.py``
with another rule rewrites ``operating_point.json`` only: :func:`final_threshold_lag` says
what ``final/`` still carries, and :func:`refresh_final_threshold`
(``analyze.update_final=true``) rewrites ``model.json``'s threshold and provenance
atomically, keeping the replaced values in ``threshold_history``. No torch here, so
``analyze.py`` stays quick.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from datetime import datetime, timezone

from gmn_base.atomic import write_json
from gmn_weather.experiment import ExperimentDir, ExperimentError
from gmn_weather.thresholds import check_unit

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5


def threshold_from_operating_point(experiment: ExperimentDir,
                                   fingerprint: str) -> tuple[float, str, dict | None]:
    """(threshold, where it came from, the operating point) for an export."""
    point = experiment.read_operating_point()
    path = experiment.operating_point_json
    if point is None:
        return DEFAULT_THRESHOLD, (f"default {DEFAULT_THRESHOLD}: no {path.name} in "
                                   f"{experiment.path} (run the folds and analyze.py first)"), None
    if point.get("fingerprint") != fingerprint:
        return DEFAULT_THRESHOLD, (f"default {DEFAULT_THRESHOLD}: {path} comes from a different "
                                   "training configuration than this final model"), None
    source = f"{path} ({point.get('rule')})"
    if point.get("optimistic"):
        source += "; OPTIMISTIC: chosen from best-epoch OOF predictions"
    threshold = check_unit(f"{path}: threshold", point.get("threshold"))
    return threshold, source, point


def card_with_threshold(card: Mapping, threshold: float, source: str, point: Mapping,
                        updated_utc: str) -> dict:
    """``model.json`` with a new threshold and its provenance; the replaced one is kept in
    ``threshold_history`` (pure)."""
    history = list(card.get("threshold_history") or [])
    history.append({"threshold": card.get("threshold"),
                    "threshold_source": card.get("threshold_source"),
                    "replaced_utc": updated_utc})
    return {**card, "threshold": float(threshold), "threshold_source": source,
            "operating_point": dict(point), "threshold_updated_utc": updated_utc,
            "threshold_history": history}


def refresh_final_threshold(experiment: ExperimentDir) -> tuple[float, float]:
    """Rewrite ``final/model.json``'s threshold from the experiment's ``operating_point.json``
    (atomically); return (old, new). Refused when the final model was trained under another
    configuration than the pooled folds."""
    final = experiment.final
    if not final.model_json.is_file():
        raise ExperimentError(f"no {final.model_json}: train the final model first "
                              "(python train.py mode=final with the experiment's overrides)")
    card = json.loads(final.model_json.read_text())
    threshold, source, point = threshold_from_operating_point(experiment, card.get("fingerprint"))
    if point is None:
        raise ExperimentError(f"cannot update {final.model_json}: {source}. Retrain it with "
                              "python train.py mode=final and the experiment's overrides")
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    write_json(final.model_json, card_with_threshold(card, threshold, source, point, now))
    log.info("final model: %s threshold %s -> %s", final.model_json, card.get("threshold"),
             threshold)
    return float(card["threshold"]), threshold


def final_threshold_lag(experiment: ExperimentDir, threshold: float) -> str | None:
    """What ``final/model.json`` still carries when it differs from ``threshold`` (None: it
    agrees, or there is no final model)."""
    final = experiment.final
    if not final.model_json.is_file():
        return None
    card = json.loads(final.model_json.read_text())
    if math.isclose(float(card.get("threshold", math.nan)), threshold, abs_tol=1e-12):
        return None
    return (f"{final.model_json} still carries threshold {card.get('threshold'):.4g} "
            f"({card.get('threshold_source')}), not this operating point's {threshold:.4g}")
