"""The final model for stations: model.onnx and model.int8.onnx agree with torch, and
``predict.py backend=onnx`` runs with torch made unimportable."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import numpy as np
import onnx
import pandas as pd
import pytest
from fixtures_train import compose_train, make_dataset, run_cli, tiny_overrides
from PIL import Image

from gmn_weather.predict import predict_paths, run
from gmn_weather.training import train

_NO_TORCH = """
import sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "timm", "pytorch_lightning"):
            raise ModuleNotFoundError(f"No module named {name!r} (made unimportable)")
        return None

sys.meta_path.insert(0, NoTorch())
"""


@pytest.fixture(scope="module")
def final(tmp_path_factory):
    """A tiny final model trained until it separates the classes, with both ONNX files;
    and 48 held-out test frames drawn like the training ones."""
    root = tmp_path_factory.mktemp("onnx")
    make_dataset(root / "data")
    _, test_dir, test_table = make_dataset(root / "test", seed=1, per_group=8,
                                           image_dir_name="frames")
    result = train(compose_train(*tiny_overrides(root / "data", root / "out"), "logger=none",
                                 "mode=final", "export.int8=true", "export.calibration_images=16",
                                 "trainer.max_epochs=6", "model.optimizer.lr=0.01"))
    files = sorted(test_dir.glob("*.png"))
    torch_table = predict_paths(result.run_dir, files)
    return SimpleNamespace(root=root, dir=result.run_dir, card=result.card, files=files,
                           test_dir=test_dir, test_table=test_table, torch=torch_table)


def test_final_writes_onnx_with_dynamic_batch_and_its_opset_in_model_json(final):
    card = json.loads((final.dir / "model.json").read_text())
    assert card == final.card
    assert card["onnx"]["file"] == "model.onnx" and card["onnx"]["int8"]["file"] == "model.int8.onnx"
    model = onnx.load(final.dir / "model.onnx")
    assert card["onnx"]["opset"] == max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    image = model.graph.input[0]
    assert image.name == "image" and image.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    dims = image.type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 32, 56]
    assert card["onnx"]["agreement_with_torch"]["max_abs_difference"] < 1e-4
    assert "v >> 8" in card["input"]["decode"]  # how 16-bit images are scaled


def test_onnx_fp32_agrees_with_torch_within_1e_4(final):
    fp32 = predict_paths(final.dir, final.files, backend="onnx", batch_size=7)
    assert np.abs(fp32["prob_clear"] - final.torch["prob_clear"]).max() < 1e-4
    assert (fp32["prediction"] == final.torch["prediction"]).all()
    labels = final.test_table.set_index("image_filename").loc[[f.name for f in final.files]]
    assert (final.torch["prediction"].to_numpy() == labels["label"].to_numpy()).mean() > 0.9


def test_int8_agrees_on_the_decision_for_99_percent_of_test_frames(final):
    int8 = predict_paths(final.dir, final.files, backend="onnx", int8=True)
    same = (int8["prediction"] == final.torch["prediction"]).mean()
    assert same >= 0.99, same
    assert np.abs(int8["prob_clear"] - final.torch["prob_clear"]).max() < 0.02
    agreement = final.card["onnx"]["int8"]["agreement_on_calibration_frames"]
    assert agreement["n_images"] == 16 and agreement["same_decision"] >= 0.99


def test_predict_with_backend_onnx_imports_no_torch(final, tmp_path):
    blocker = tmp_path / "site"
    blocker.mkdir()
    # Imported at interpreter start: from then on torch is as absent as on a machine
    # without it (any `import torch` raises ModuleNotFoundError).
    (blocker / "sitecustomize.py").write_text(_NO_TORCH)
    out = tmp_path / "pred.csv"
    env = {"PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])}
    proc = run_cli("predict.py", f"checkpoint={final.dir}", f"input={final.test_dir}",
                   f"output={out}", "backend=onnx", f"paths.output_root={tmp_path}", env=env)
    assert f"predicted {len(final.files)} images" in proc.stdout
    rows = pd.read_csv(out)
    assert np.abs(rows["prob_clear"].to_numpy() - final.torch["prob_clear"].to_numpy()).max() < 1e-4
    assert list(rows["station"]) == list(final.test_table.sort_values("image_filename")["station"])
    probe = run_cli("predict.py", "--help", env=env)  # the blocker works: torch is refused
    assert probe.returncode == 0
    check = run_cli("-c", "import torch", env=env, check=False)
    assert check.returncode != 0 and "No module named 'torch' (made unimportable)" in check.stderr


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_sixteen_bit_frames_predict_as_their_eight_bit_values(final, tmp_path, backend):
    sixteen = []
    for path in final.files[:6]:
        values = np.asarray(Image.open(path).convert("L"), np.uint16) * 257
        for suffix in (".png", ".tif"):
            target = tmp_path / f"{path.stem}{suffix}"
            Image.fromarray(values).save(target)
            sixteen.append(target)
    table = predict_paths(final.dir, sixteen, backend=backend)
    expected = final.torch["prob_clear"].to_numpy()[:6].repeat(2)
    assert np.abs(table["prob_clear"].to_numpy() - expected).max() < 1e-4
    assert (table["error"] == "").all()


def test_missing_onnx_files_are_named_with_the_way_out(final, tmp_path):
    import shutil

    old = tmp_path / "final"
    shutil.copytree(final.dir, old)
    card = json.loads((old / "model.json").read_text())
    card["onnx"] = None  # a final model exported before ONNX existed
    (old / "model.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="has no model.onnx.*mode=final.*backend=torch"):
        run(str(old), str(final.files[0]), str(tmp_path / "o.csv"), backend="onnx")
    assert not (tmp_path / "o.csv").exists()
