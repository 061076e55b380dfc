"""Pool an experiment's out-of-fold predictions, or compare every experiment (mode=compare):
see `python analyze.py --help`."""

import sys

import hydra
from omegaconf import DictConfig

from gmn_base.command_line import guard_secrets
from gmn_weather.hydra_config import register_resolvers, task_overrides

register_resolvers()


@guard_secrets
@hydra.main(version_base="1.3", config_path="conf", config_name="analyze")
def main(cfg: DictConfig) -> None:
    from gmn_weather.analysis import USER_ERRORS, analyze

    try:
        print(analyze(cfg, task_overrides()))
    except USER_ERRORS as exc:
        print(f"analyze: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
