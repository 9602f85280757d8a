"""Training: the loss goes down, checkpoints round-trip, resume is exact."""

import json

import jax
import numpy as np
import pytest

from jaxfuse import checkpoint, model
from jaxfuse.errors import JaxfuseError
from jaxfuse.training import TrainConfig, load_training_image, train_and_evaluate


def _run(tmp_path, name, **kw):
    cfg = TrainConfig(**{"size": 32, "steps": 6, "checkpoint_every": 3, **kw})
    return cfg, train_and_evaluate(cfg, tmp_path / name, progress=False)


def test_builtin_image_is_camera_resized():
    img = load_training_image(None, 256)
    assert img.shape == (1, 256, 256, 1) and img.dtype == np.float32
    assert 0 <= img.min() and img.max() <= 255 and img.std() > 30


def test_few_steps_lower_the_loss(tmp_path):
    _, s = _run(tmp_path, "a", steps=12)
    hist = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert hist["final_loss"]["total"] == s["final_loss"]["total"]
    meta = checkpoint.read_meta(tmp_path / "a" / "checkpoints" / "12")
    total = meta["history"]["total"]
    assert len(total) == 12 and total[-1] < total[0]
    for f in ("loss_curves.png", "reconstruction.png", "summary.json"):
        assert (tmp_path / "a" / f).stat().st_size > 0


def test_resume_is_bit_identical(tmp_path):
    cfg, _ = _run(tmp_path, "full")
    part = TrainConfig(size=32, steps=3, checkpoint_every=3)
    train_and_evaluate(part, tmp_path / "split", progress=False)
    # the default image named (``--image camera``) is the same run as no --image
    named = TrainConfig(size=32, steps=6, checkpoint_every=3, image="camera")
    train_and_evaluate(named, tmp_path / "split", resume=True, progress=False)
    a, meta_a = checkpoint.restore(tmp_path / "full" / "checkpoints")[:2]
    b, meta_b = checkpoint.restore(tmp_path / "split" / "checkpoints")[:2]
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert meta_a["history"] == meta_b["history"] and meta_a["step"] == 6


def test_checkpoint_round_trip_and_config(tmp_path):
    cfg, _ = _run(tmp_path, "sep", steps=2, shared=False, checkpoint_every=1)
    params, config = checkpoint.load_params(tmp_path / "sep" / "checkpoints")
    assert config == model.ModelConfig(shared=False)
    assert model.count_params(params) == 101_217
    meta = checkpoint.read_meta(tmp_path / "sep" / "checkpoints" / "2")
    assert meta["jaxfuse_version"] and meta["model"] == {"arch": "res2netfuse", "shared": False}
    with pytest.raises(JaxfuseError, match="checkpoint is for"):
        checkpoint.load_params(tmp_path / "sep" / "checkpoints", config=model.ModelConfig())


def test_existing_run_needs_resume_or_overwrite(tmp_path):
    _run(tmp_path, "x", steps=1)
    with pytest.raises(JaxfuseError, match="already holds a training run") as e:
        _run(tmp_path, "x", steps=1)
    assert e.value.hint == "resume"  # the commands word it: "pass --resume to continue it ..."
    cfg = TrainConfig(size=32, steps=2, seed=3)
    with pytest.raises(JaxfuseError, match="seed"):
        train_and_evaluate(cfg, tmp_path / "x", resume=True, progress=False)


def test_msssim_loss_trains(tmp_path):
    _, s = _run(tmp_path, "ms", loss="msssim", size=176, steps=3)
    assert np.isfinite(s["final_loss"]["total"])
