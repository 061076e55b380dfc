"""No secret reaches a file: every way a user can set one, every command, single and multirun.

Secrets typed on a command line (``key=``, ``+key=``, ``++key=``, ``+hydra.job.env_set``) are
moved into the environment before Hydra starts (gmn_base/command_line.py), secrets in config
files are refused, refused keys (``source.password``, ``converter.api_key``) are refused
before anything is saved (gmn_base/run_checks.py), and W&B records no command line. The
commands run for real (train.py as a joblib multirun with W&B offline, analyze.py,
predict.py, data-prep steps over a local archive and over a real loopback sshd), then
every file under the test's folders (data, outputs, W&B's) is searched for each secret.
"""

from __future__ import annotations

import subprocess

import fixtures_sshd
import pytest
from fixtures_gemini import files_containing
from fixtures_sshd import make_small_archive
from fixtures_train import compose_train, make_dataset, run_cli
from fixtures_wandb import read_wandb_records
from omegaconf import OmegaConf

from gmn_base.command_line import SecretOverrideError, protect_argv, protect_overrides
from gmn_base.redaction import REDACTED, is_secret_key, redact_secrets
from gmn_base.run_checks import secret_problems

sshd_server = fixtures_sshd.sshd_server  # the module's loopback sshd (a pytest fixture)

PEM = "-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAA -----END OPENSSH PRIVATE KEY-----"


# --- what is a secret ---------------------------------------------------------------------


@pytest.mark.parametrize("key", ["hf_token", "WANDB_API_KEY", "apiKey", "source.password",
                                 "passphrase", "client_secret", "notify.credentials",
                                 "private_key", "converter.key", "authToken"])
def test_secret_looking_keys(key):
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["source.passphrase_env", "source.key_file",
                                 "source.accept_new_host_key", "tokenizer", "max_tokens",
                                 "sort_key", "token_file", "data.batch_size"])
def test_keys_that_only_name_where_a_secret_lives_are_not_secret(key):
    assert not is_secret_key(key)


def test_redaction_covers_secret_keys_and_key_material_anywhere():
    redacted = redact_secrets({"notify": {"token": "t", "token_env": "MY_TOKEN"},
                               "note": PEM, "items": [{"password": "p"}], "empty_token": None})
    assert redacted == {"notify": {"token": REDACTED, "token_env": "MY_TOKEN"},
                        "note": REDACTED, "items": [{"password": REDACTED}],
                        "empty_token": None}


# --- the command line ----------------------------------------------------------------------


def test_every_override_form_moves_its_value_into_the_environment():
    overrides = ["fold=1", "notify.token=s1", "+hf_token=s2", "++notify.api_key='s 3'",
                 "+hydra.job.env_set.GMN_NOTIFY_TOKEN=s4", f"+note={PEM}"]
    protected, environment = protect_overrides(overrides)
    assert protected == [
        "fold=1",
        "notify.token=${oc.env:GMN_SECRET_NOTIFY_TOKEN}",
        "+hf_token=${oc.env:GMN_SECRET_HF_TOKEN}",
        "++notify.api_key=${oc.env:GMN_SECRET_NOTIFY_API_KEY}",
        "+hydra.job.env_set.GMN_NOTIFY_TOKEN=${oc.env:GMN_SECRET_HYDRA_JOB_ENV_SET_GMN_NOTIFY_TOKEN}",
        "+note=${oc.env:GMN_SECRET_NOTE}",
    ]
    assert environment == {"GMN_SECRET_NOTIFY_TOKEN": "s1", "GMN_SECRET_HF_TOKEN": "s2",
                           "GMN_SECRET_NOTIFY_API_KEY": "s 3",
                           "GMN_SECRET_HYDRA_JOB_ENV_SET_GMN_NOTIFY_TOKEN": "s4",
                           "GMN_SECRET_NOTE": PEM}


def test_overrides_without_a_secret_value_stay_as_typed():
    kept = ["~notify.token", "notify.token=null", "notify.token=", "+hf_token=${oc.env:HF}",
            "source.passphrase_env=MY_PASSPHRASE", "model.backbone=resnet18,convnext_tiny"]
    assert protect_overrides(kept) == (kept, {})


def test_a_secret_cannot_be_swept_or_left_unparsable_and_is_never_echoed():
    with pytest.raises(SecretOverrideError, match="hf_token: a secret value cannot be swept"):
        protect_overrides(["+hf_token=aa1,bb2"])
    with pytest.raises(SecretOverrideError, match="quote it") as err:
        protect_overrides(["+hf_token=hun=ter2"])
    assert "hun=ter2" not in str(err.value)


def test_arguments_hydra_would_reject_are_protected_too():
    # Overrides after an option are "unrecognized" to argparse; Hydra's usage error then
    # repeats them, so they are protected as well.
    environ = {}
    argv = ["find.py", "a=1", "--config-dir", "/x", "+source.password=s5"]
    assert protect_argv(argv, environ)[-1] == "+source.password=${oc.env:GMN_SECRET_SOURCE_PASSWORD}"
    assert environ == {"GMN_SECRET_SOURCE_PASSWORD": "s5"}


def test_argv_keeps_hydra_options_and_order():
    environ = {}
    argv = ["train.py", "-m", "--config-dir", "/x/conf", "fold=0,1", "+hf_token=s2", "-cn",
            "train"]
    assert protect_argv(argv, environ) == [
        "train.py", "-m", "--config-dir", "/x/conf", "fold=0,1",
        "+hf_token=${oc.env:GMN_SECRET_HF_TOKEN}", "-cn", "train"]
    assert environ == {"GMN_SECRET_HF_TOKEN": "s2"}


# --- config files and refused keys ---------------------------------------------------------


def test_secrets_in_config_files_and_refused_sections_are_found(monkeypatch):
    monkeypatch.setenv("GMN_SECRET_SOURCE_PASSWORD", "pw")
    cfg = compose_train("+notify.token=written-in-a-file", "+hf_token=${oc.env:HF}",
                        "+source.password=${oc.env:GMN_SECRET_SOURCE_PASSWORD}")
    problems = secret_problems(cfg, {"source": "keys only"})
    assert problems == [
        ("notify.token holds a secret written in a config file; secrets come from the "
         "environment: token: ${oc.env:YOUR_VARIABLE} in the file, or give it on the command "
         "line (it is kept out of every saved file)"),
        "source.password is not accepted: keys only",
    ]
    assert not secret_problems(compose_train("logger=wandb"), {})


# --- the real commands --------------------------------------------------------------------

SECRETS = {  # one per way of setting it, so a leak says which way leaked
    "change": "s3cret-change-11",        # notify.token=  (a key the config has)
    "add": "s3cret-add-22",              # +hf_token=
    "force_add": "s3cret-forceadd-33",   # ++notify.api_key=
    "env_set": "s3cret-envset-44",       # +hydra.job.env_set.GMN_NOTIFY_TOKEN=
    "env_wandb": "s3cret-wandbkey-55",   # WANDB_API_KEY in the environment (W&B reads it)
    "env_gemini": "s3cret-gemini-66",    # GEMINI_API_KEY in the environment
}


def _secret_overrides(conf_dir) -> list[str]:
    """Hydra's ``--config-dir`` (options come before the overrides: argparse stops at the
    first option after them), then a secret set every way a command line can."""
    (conf_dir / "notify").mkdir(parents=True)
    (conf_dir / "notify" / "empty.yaml").write_text("token: null\nchannel: weather\n")
    return ["--config-dir", str(conf_dir), "+notify=empty",
            f"notify.token={SECRETS['change']}", f"+hf_token={SECRETS['add']}",
            f"++notify.api_key={SECRETS['force_add']}",
            f"+hydra.job.env_set.GMN_NOTIFY_TOKEN={SECRETS['env_set']}"]


def _assert_nowhere(root, *outputs: str) -> None:
    for name, secret in SECRETS.items():
        assert not files_containing(root, secret), (name, files_containing(root, secret))
        assert all(secret not in text for text in outputs), name


def test_training_commands_write_no_secret(tmp_path):
    data, out = tmp_path / "data", tmp_path / "outputs"
    make_dataset(data)
    env = {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path / "wandb_dir"),
           "WANDB_SILENT": "true", "WANDB_API_KEY": SECRETS["env_wandb"],
           "GEMINI_API_KEY": SECRETS["env_gemini"]}
    common = [*_secret_overrides(tmp_path / "conf"), f"paths.data_dir={data}",
              f"paths.output_root={out}", "debug=tiny", "data.n_folds=2"]
    folds = run_cli("train.py", "-m", *common, "fold=0,1", "hydra/launcher=joblib",
                    "logger=wandb", env=env)
    pooled = run_cli("analyze.py", *common, env=env)
    exp = out / "tiny_test_resnet_light_n_folds-2"  # named by its training override
    predicted = run_cli("predict.py", *common, f"input={data / 'converted_day'}",
                        f"checkpoint={exp / 'fold_0' / 'checkpoints' / 'last.ckpt'}",
                        f"output={tmp_path / 'predictions.csv'}", env=env)
    _assert_nowhere(tmp_path, *(p.stdout + p.stderr for p in (folds, pooled, predicted)))

    # The jobs did receive the values (the multirun's joblib workers included) ...
    saved = OmegaConf.load(exp / "fold_1" / "config.yaml")
    assert saved.hf_token == REDACTED and saved.notify.token == REDACTED
    assert saved.notify.api_key == REDACTED
    # ... Hydra saved where they come from, not what they are ...
    assert "hf_token: ${oc.env:GMN_SECRET_HF_TOKEN}" in \
        (exp / "fold_0" / ".hydra" / "config.yaml").read_text()
    assert "GMN_SECRET_NOTIFY_API_KEY" in (out / "multirun.yaml").read_text()
    assert (tmp_path / "predictions.csv").is_file() and (exp / "operating_point.json").is_file()
    # ... and W&B's run files (searched above) hold no command line at all.
    logs = sorted(exp.glob("fold_*/wandb/offline-run-*/run-*.wandb"))
    assert len(logs) == 2
    environments = [r.environment for log in logs for r in read_wandb_records(log)
                    if r.WhichOneof("record_type") == "environment"]
    assert not any(e.args or e.program for e in environments)


def _prep_overrides(tmp_path) -> list[str]:
    make_small_archive(tmp_path / "archive")
    return [f"paths.data_dir={tmp_path / 'data'}", f"source.root={tmp_path / 'archive'}",
            "source.video_root=home/contrails/CA", "source.flux_root=home/extracted_data/CA"]


def test_data_prep_single_and_multirun_write_no_secret(tmp_path):
    base = _secret_overrides(tmp_path / "conf") + _prep_overrides(tmp_path)
    env = {"GEMINI_API_KEY": SECRETS["env_gemini"]}
    single = run_cli("-m", "data_prep.find", *base, env=env)
    sweep = run_cli("-m", "data_prep.find", "--multirun", *base, "find.last_n=1,2", env=env)
    _assert_nowhere(tmp_path, single.stdout + single.stderr, sweep.stdout + sweep.stderr)
    logs = tmp_path / "data" / "logs" / "find"
    assert len(list(logs.glob("*/multirun.yaml"))) == 1
    # A multirun's jobs get their overrides back escaped for the grammar ($\{oc.env\:...\}).
    saved = list(logs.glob("**/.hydra/overrides.yaml"))
    assert len(saved) == 3 and all("GMN_SECRET_HF_TOKEN" in p.read_text() for p in saved)
    assert (tmp_path / "data" / "nights.csv").is_file()


@pytest.mark.parametrize("command, override, reason", [
    (["-m", "data_prep.find"], "+source.password", "SFTP source signs in with SSH keys only"),
    (["-m", "data_prep"], "++source.passphrase", "SFTP source signs in with SSH keys only"),
    (["-m", "data_prep.night_to_day"], "+converter.api_key", "GEMINI_API_KEY"),
])
def test_refused_secret_keys_stop_before_anything_is_saved(tmp_path, command, override, reason):
    secret = "s3cret-refused-77"
    proc = run_cli(*command, *_prep_overrides(tmp_path), f"{override}={secret}", check=False)
    assert proc.returncode == 2
    key = override.lstrip("+")
    assert f"{key} is not accepted: the" in proc.stderr and reason in proc.stderr
    assert secret not in proc.stdout + proc.stderr
    assert not (tmp_path / "data").exists()  # no log folder, no saved config


def test_sftp_passphrase_from_the_environment_reaches_no_file(sshd_server, tmp_path):
    make_small_archive(sshd_server.root)
    passphrase = "s3cret-passphrase-88"
    locked = tmp_path / "locked_ed25519"
    locked.write_bytes(sshd_server.client_key.read_bytes())
    locked.chmod(0o600)
    subprocess.run(["ssh-keygen", "-q", "-p", "-P", "", "-N", passphrase, "-f", str(locked)],
                   check=True)
    known = sshd_server.write_known_hosts(tmp_path / "known_hosts")
    proc = run_cli("-m", "data_prep.find", f"paths.data_dir={tmp_path / 'data'}",
                   *sshd_server.source_overrides(known, **{"source.key_file": str(locked)}),
                   env={"GMN_SSH_KEY_PASSPHRASE": passphrase, "HOME": str(tmp_path),
                        "SSH_AUTH_SOCK": ""})
    assert (tmp_path / "data" / "nights.csv").is_file()
    assert not files_containing(tmp_path / "data", passphrase)
    assert passphrase not in proc.stdout + proc.stderr
