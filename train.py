"""Train one cross-validation fold, every fold (mode=cv) or the final model: see
`python train.py --help`."""

import sys

import hydra
from omegaconf import DictConfig

from gmn_base.command_line import guard_secrets
from gmn_weather.hydra_config import register_resolvers
from gmn_weather.launchers import use_project_launcher_configs

register_resolvers()
use_project_launcher_configs()


@guard_secrets
@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    # Imported here so `--help` answers without loading torch.
    from gmn_weather.training import USER_ERRORS, train

    try:
        result = train(cfg)  # logs the pooled table when this job completes the folds
    except USER_ERRORS as exc:
        print(f"train.py: {exc}", file=sys.stderr)
        sys.exit(1)
    # optimized_metric (higher is better): pooled when the experiment is pooled, else this
    # fold's own value of it; what Hydra's sweepers (hparams_search=optuna) optimise.
    return result.objective


if __name__ == "__main__":
    main()
