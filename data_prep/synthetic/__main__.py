"""``python -m data_prep.synthetic``: generate the synthetic GMN archive ``synthetic.*`` describes.

Reads the ``synthetic`` config group, writes the archive (:func:`data_prep.synthetic.archive.
generate_archive`; a rerun resumes, other settings for the same folder are refused by name)
and, with ``synthetic.contact_sheet``, a contact sheet of its frames. See docs/synthetic.md.
"""

from __future__ import annotations

import logging
import time

import hydra
from omegaconf import DictConfig, ListConfig, OmegaConf

from data_prep.summary import StepSummary, run_step
from data_prep.synthetic.archive import generate_archive
from data_prep.synthetic.contact_sheet import write_contact_sheet
from gmn_base.command_line import guard_secrets

log = logging.getLogger("data_prep.synthetic")


def stations_from_config(value) -> int | list[str]:
    """``synthetic.stations``: a count, a list of ids, or ids separated by commas."""
    if isinstance(value, (ListConfig, list, tuple)):
        return [str(v) for v in value]
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def run(cfg: DictConfig) -> StepSummary:
    """Generate the archive described by ``cfg.synthetic``; optionally a contact sheet."""
    summary = StepSummary("synthetic")
    began = time.monotonic()
    syn = OmegaConf.to_container(cfg.synthetic, resolve=True)
    out_dir = syn.pop("out_dir")
    if not out_dir:
        raise ValueError("synthetic.out_dir is not set")
    contact_sheet = syn.pop("contact_sheet", None)
    syn["stations"] = stations_from_config(syn["stations"])
    syn["first_night"] = str(syn.get("first_night", "20251106"))
    archive = generate_archive(out_dir, progress=True, **syn)
    summary.count("stations", len(archive.stations))
    summary.count("timelapses", len(archive.timelapses))
    summary.count("rendered", archive.rendered)
    summary.count("already_complete", len(archive.timelapses) - archive.rendered)
    summary.count("frames", archive.frames)
    summary.count("clear_night_frames", archive.clear_frames)
    summary.count("all_cloudy_nights", archive.cloudy_nights)
    summary.outputs["archive"] = str(archive.out_dir)
    summary.outputs["truth"] = str(archive.truth_csv)
    if contact_sheet:
        write_contact_sheet(archive.out_dir, contact_sheet)
        summary.outputs["contact_sheet"] = str(contact_sheet)
    summary.seconds = time.monotonic() - began
    return summary


# conf/prep_synthetic.yaml is conf/prep.yaml under the step's name: Hydra would name the job
# after this file (__main__), and the job name is the log folder and the --help header.
@guard_secrets
@hydra.main(version_base="1.3", config_path="../../conf", config_name="prep_synthetic")
def main(cfg: DictConfig) -> None:
    # A ValueError is a bad setting or an archive made otherwise, named in the message: exit 2, no traceback.
    run_step("synthetic", run, cfg, log, user_errors=(ValueError,))


if __name__ == "__main__":
    main()
