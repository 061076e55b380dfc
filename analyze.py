"""Pool an experiment's out-of-fold predictions: see `python analyze.py --help`."""

import sys

import hydra
from omegaconf import DictConfig

from gmn_base.command_line import guard_secrets
from gmn_weather.hydra_config import register_resolvers

register_resolvers()


@guard_secrets
@hydra.main(version_base="1.3", config_path="conf", config_name="analyze")
def main(cfg: DictConfig) -> None:
    from gmn_weather.decision_files import pool_folds
    from gmn_weather.experiment import ExperimentDir, ExperimentError
    from gmn_weather.thresholds import ThresholdSettingError, check_rule

    try:
        check_rule(**cfg.analyze)
        result = pool_folds(ExperimentDir.of(cfg.paths.output_root, cfg.name), **cfg.analyze)
    except (ExperimentError, ThresholdSettingError) as exc:
        print(f"analyze: {exc}", file=sys.stderr)
        sys.exit(1)
    print(result.report())


if __name__ == "__main__":
    main()
