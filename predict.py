"""Run a trained classifier on images: see `python predict.py --help`."""

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from gmn_base.command_line import guard_secrets
from gmn_weather.hydra_config import register_resolvers

register_resolvers()


@guard_secrets
@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    if OmegaConf.is_missing(cfg, "input"):
        print("predict.py: say what to predict: input=<image, folder or glob>", file=sys.stderr)
        sys.exit(2)
    # Neither imports torch: backend=onnx runs on a station without it.
    from gmn_weather.model_card import CheckpointError
    from gmn_weather.predict import PredictInputError, run

    try:
        summary = run(str(cfg.checkpoint), str(cfg.input), str(cfg.output), cfg.threshold,
                      cfg.batch_size, cfg.num_workers, cfg.device, str(cfg.backend),
                      bool(cfg.int8))
    except (FileNotFoundError, CheckpointError, PredictInputError) as exc:
        print(f"predict.py: {exc}", file=sys.stderr)
        sys.exit(2)
    print("\n".join(summary.lines()))
    # Unreadable images were predicted around and listed; the exit status still says so.
    sys.exit(1 if summary.n_unreadable else 0)


if __name__ == "__main__":
    main()
