"""Run a trained classifier on images: see `python predict.py --help`."""

import sys

import hydra
from omegaconf import DictConfig

from gmn_weather.config import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    from gmn_weather.predict import run

    summary = run(str(cfg.checkpoint), str(cfg.input), str(cfg.output), cfg.threshold,
                  int(cfg.batch_size), int(cfg.num_workers), cfg.device)
    print("\n".join(summary.lines()))
    sys.exit(1 if summary.n_unreadable else 0)


if __name__ == "__main__":
    main()
