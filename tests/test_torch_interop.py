"""PyTorch interop: the authors' state_dict files load into jaxfuse and compute the same network.

The reference is ``tests/torch_reference.py``, an independent PyTorch
Res2NetFuse written from SPEC with the authors' parameter names. Its weights
are seeded random draws scaled so that every layer (biases included) shapes
0–255-magnitude outputs (``random_model(scaled=True)``); PyTorch's default
initialisation shrinks the signal through 12 convs until the output is
mostly biases, where a mis-mapped kernel would hide.

Tolerances: the two frameworks run the same float32 convolutions with
different summation orders, so they differ by float32 rounding: measured at
most 2e-6 of the peak absolute value (about 0.002 on peaks of 500–2600).
Values are compared with ``|jax − torch| ≤ 1e-4·|torch| + 1e-4·max|torch|``,
i.e. 0.05–0.26 on those peaks: below one grey level of the 0–255 output and
~50× above the rounding seen, while any mapping bug (a transposed kernel, a
swapped bias, a wrong group) moves values by a sizeable fraction of the peak.
After the authors' uint8 output step (truncation), values may differ by one
level where a value sits on an integer boundary; we allow ≤ 1 level on
< 1 % of the pixels.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from jaxfuse import checkpoint, convert, fusion, model, torch_io  # noqa: E402
from jaxfuse.bench import torch_baseline as ref  # noqa: E402
from jaxfuse.errors import JaxfuseError  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
H, W = 32, 40
RTOL = 1e-4

# The authors' keys (Res2NetFuse net_gray.py GenerativeNet.state_dict(), as
# listed in the issue), with OIHW shapes.
AUTHORS_KEYS = {
    "conv.0.conv.weight": (32, 1, 3, 3), "conv.0.conv.bias": (32,),
    "conv.1.conv.weight": (64, 32, 3, 3), "conv.1.conv.bias": (64,),
    "res2netBlock.0.conv.weight": (64, 64, 1, 1), "res2netBlock.0.conv.bias": (64,),
    "res2netBlock.1.conv.conv.weight": (16, 16, 3, 3), "res2netBlock.1.conv.conv.bias": (16,),
    "res2netBlock.2.conv.weight": (64, 64, 1, 1), "res2netBlock.2.conv.bias": (64,),
    "decoder.0.conv.weight": (64, 64, 3, 3), "decoder.0.conv.bias": (64,),
    "decoder.1.conv.weight": (32, 64, 3, 3), "decoder.1.conv.bias": (32,),
    "decoder.2.conv.weight": (16, 32, 3, 3), "decoder.2.conv.bias": (16,),
    "decoder.3.conv.weight": (1, 16, 3, 3), "decoder.3.conv.bias": (1,),
}

FORMS = [pytest.param(True, id="shared"), pytest.param(False, id="separate")]

encode_jit = jax.jit(model.encode)
reconstruct_jit = jax.jit(model.reconstruct)


# ----------------------------------------------------------------------------- helpers

def _images(seed: int, n: int) -> np.ndarray:
    """``(n, H, W)`` float32 0–255: a smooth ramp plus texture and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    out = []
    for _ in range(n):
        a, b, c = rng.uniform(-1, 1, 3)
        base = 128 + 60 * (a * yy / H + b * xx / W) + 40 * np.sin(c * 6 * xx / W + yy / 5)
        out.append(np.clip(base + rng.normal(0, 20, (H, W)), 0, 255))
    return np.stack(out).astype(np.float32)


def _nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x[:, None]))


def _nhwc(x: np.ndarray) -> jax.Array:
    return jnp.asarray(x[..., None])


def _to_nhwc(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().transpose(0, 2, 3, 1)


def _assert_close(got, want, *, rtol: float = RTOL) -> None:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    assert np.all(np.isfinite(want))
    peak = np.max(np.abs(want))
    assert peak > 1.0, "reference output is degenerate (would not test the mapping)"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * peak)


def _assert_uint8_close(got, want) -> None:
    got, want = np.asarray(got).astype(int), np.asarray(want).astype(int)
    diff = np.abs(got - want)
    assert diff.max() <= 1
    assert np.mean(diff > 0) < 0.01


def _scaled_jax_params(seed: int, shared: bool):
    """jaxfuse-native random params (He-normal kernels, N(0, 1) biases), as if trained in JAX.

    Drawn with NumPy over the shapes of ``jax.eval_shape(init_params)``, which
    compiles nothing (jitting init for each form costs seconds on a small CPU).
    """
    rng = np.random.default_rng(seed)
    abstract = checkpoint.abstract_params(model.ModelConfig(shared=shared))

    def draw(leaf):
        z = rng.standard_normal(leaf.shape).astype(np.float32)
        return jnp.asarray(z * (2.0 / np.prod(leaf.shape[:3])) ** 0.5 if len(leaf.shape) == 4 else z)

    return jax.tree_util.tree_map(draw, abstract)


def _save_sd(sd, path: Path) -> Path:
    torch.save(sd, path)
    return path


def _run_convert(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-m", "jaxfuse.convert", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def _main(*args: str, capsys) -> tuple[int, str, str]:
    rc = convert.main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module", params=FORMS)
def loaded(request, tmp_path_factory):
    """(torch model, jaxfuse params loaded from its .model file, shared)."""
    shared = request.param
    net = ref.random_model(seed=1 if shared else 2, shared=shared)
    path = tmp_path_factory.mktemp("sd") / "res2netfuse.model"
    _save_sd(net.state_dict(), path)
    params, config = checkpoint.load_params(path)
    assert config == model.ModelConfig(shared=shared)
    return net, params, shared


# ----------------------------------------------------------------------------- the reference

def test_reference_has_the_authors_keys():
    sd = ref.TorchRes2NetFuse(shared=True).state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == AUTHORS_KEYS


@pytest.mark.parametrize("shared", FORMS)
def test_key_map_covers_params_and_reference(shared):
    cfg = model.ModelConfig(shared=shared)
    sd = ref.TorchRes2NetFuse(shared=shared).state_dict()
    rows = torch_io.key_map(cfg)
    assert {f"{t}.{s}" for t, _, _ in rows for s in ("weight", "bias")} == set(sd)
    assert all(tuple(sd[f"{t}.weight"].shape) == shape for t, _, shape in rows)
    # Every leaf of jaxfuse's tree is mapped, with the transposed shape.
    abstract = checkpoint.abstract_params(cfg)
    for _, path, (o, i, kh, kw) in rows:
        node = abstract
        for p in path:
            node = node[p]
        assert node["kernel"].shape == (kh, kw, i, o) and node["bias"].shape == (o,)
    assert sum(2 for _ in rows) == len(jax.tree_util.tree_leaves(abstract))


# ----------------------------------------------------------------------------- loading

def test_encoder_features_match(loaded):
    net, params, _ = loaded
    x = _images(10, 2)
    with torch.no_grad():
        want = _to_nhwc(net.encode(_nchw(x)))
    _assert_close(encode_jit(params, _nhwc(x)), want)


def test_reconstruction_matches(loaded):
    net, params, _ = loaded
    x = _images(11, 2)
    with torch.no_grad():
        want = _to_nhwc(net(_nchw(x)))
    _assert_close(reconstruct_jit(params, _nhwc(x)), want)


@pytest.mark.parametrize("strategy", ["l1", "mean"])
def test_fusion_matches(loaded, strategy):
    net, params, _ = loaded
    ir, vis = _images(12, 2)
    with torch.no_grad():
        out = net.fuse(_nchw(ir[None]), _nchw(vis[None]), strategy)
    want = _to_nhwc(out)
    got = fusion.fuse(params, np.stack([ir, vis])[:, None, :, :, None], strategy=strategy)
    _assert_close(got, want)
    _assert_uint8_close(fusion.to_uint8(got), _to_nhwc(ref.to_uint8(out)))


@pytest.mark.parametrize("strategy", ["l1", "mean"])
def test_fusion_strategies_match_on_features(strategy):
    """The strategies alone, on the same random non-negative features."""
    from jaxfuse.strategies import get_strategy
    rng = np.random.default_rng(3)
    f = rng.gamma(0.5, 40.0, (2, 1, 64, H, W)).astype(np.float32)
    want = ref.STRATEGIES[strategy](torch.from_numpy(f[0]), torch.from_numpy(f[1]))
    got = jax.jit(get_strategy(strategy))(jnp.asarray(f.transpose(0, 1, 3, 4, 2)))
    _assert_close(got, _to_nhwc(want))


def test_load_tolerates_prefix_wrappers_and_half_precision(tmp_path):
    net = ref.random_model(seed=4, shared=True)
    sd = net.state_dict()
    base = checkpoint.load_params(_save_sd(sd, tmp_path / "plain.model"))[0]
    variants = {
        "dataparallel.pth": {"module." + k: v for k, v in sd.items()},
        "wrapped.pt": {"state_dict": sd, "epoch": 3},
        "wrapped_model.model": {"model": {"module." + k: v for k, v in sd.items()},
                                "optimizer": {"state": {}, "param_groups": []}},
    }
    for name, obj in variants.items():
        got = checkpoint.load_params(_save_sd(obj, tmp_path / name))[0]
        jax.tree_util.tree_map(np.testing.assert_array_equal, got, base)
    half = {k: v.half() for k, v in sd.items()}
    got = checkpoint.load_params(_save_sd(half, tmp_path / "half.model"))[0]
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3), got, base)


# ----------------------------------------------------------------------------- export

@pytest.mark.parametrize("shared", FORMS)
def test_export_round_trip(tmp_path, shared):
    params = _scaled_jax_params(5, shared)
    path = torch_io.save_torch_checkpoint(params, tmp_path / "exported.model")
    sd = torch.load(path, weights_only=True, map_location="cpu")
    if shared:
        assert {k: tuple(v.shape) for k, v in sd.items()} == AUTHORS_KEYS
    net = ref.TorchRes2NetFuse(shared=shared).eval()
    net.load_state_dict(sd, strict=True)
    x = _images(13, 2)
    with torch.no_grad():
        _assert_close(reconstruct_jit(params, _nhwc(x)), _to_nhwc(net(_nchw(x))))
        out = net.fuse(_nchw(x[:1]), _nchw(x[1:]), "mean")
    _assert_close(fusion.fuse(params, x[:, None, :, :, None], strategy="mean"), _to_nhwc(out))
    # Loading the export gives back the same parameters, bit for bit.
    back = torch_io.load_torch_checkpoint(path)
    jax.tree_util.tree_map(np.testing.assert_array_equal, back, params)


def test_export_refuses_to_overwrite(tmp_path):
    params = _scaled_jax_params(0, True)
    path = torch_io.save_torch_checkpoint(params, tmp_path / "a.model")
    with pytest.raises(JaxfuseError, match="exists"):
        torch_io.save_torch_checkpoint(params, path)
    torch_io.save_torch_checkpoint(params, path, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["a.model"]  # no temporary left behind


def test_export_rejects_foreign_trees():
    with pytest.raises(ValueError, match="Res2NetFuse"):
        torch_io.state_dict_from_params({"encoder": {}})
    params = _scaled_jax_params(0, True)
    params["decoder"]["conv4"] = params["decoder"]["conv3"]
    with pytest.raises(ValueError, match="unexpected"):
        torch_io.state_dict_from_params(params)
    # The comparison networks have no PyTorch layout (ArchSpec.torch_keys is None).
    dense = checkpoint.abstract_params(model.ModelConfig(arch="densefuse"))
    with pytest.raises(ValueError, match="DenseFuse parameters have no PyTorch state_dict layout"):
        torch_io.state_dict_from_params(dense)
    with pytest.raises(ValueError, match="MSDNet parameters have no PyTorch"):
        torch_io.key_map(model.ModelConfig(arch="msdnet"))


# ----------------------------------------------------------------------------- bad files

def _bad_state_dicts():
    sd = ref.random_model(seed=6, shared=True).state_dict()
    missing = dict(sd)
    del missing["decoder.2.conv.bias"]
    wrong_shape = dict(sd, **{"conv.0.conv.weight": torch.zeros(32, 3, 3, 3)})
    extra = dict(sd, **{"decoder.4.conv.weight": torch.zeros(1, 1, 3, 3)})
    nan = dict(sd, **{"conv.1.conv.bias": torch.full((64,), float("nan"))})
    ints = dict(sd, **{"conv.1.conv.bias": torch.zeros(64, dtype=torch.int64)})
    return {
        "missing": (missing, "missing keys decoder.2.conv.bias"),
        "wrong_shape": (wrong_shape, r"conv.0.conv.weight has shape \(32, 3, 3, 3\), expected \(32, 1, 3, 3\)"),
        "extra": (extra, "unexpected keys decoder.4.conv.weight"),
        "nan": (nan, "conv.1.conv.bias contains NaN"),
        "ints": (ints, "conv.1.conv.bias has dtype torch.int64"),
        "odd_entry": (dict(sd, step=3), "unexpected keys step"),
        "not_a_dict": ([1, 2, 3], "holds a list, not a state_dict"),
        "foreign_dict": ({"epoch": 3, "lr": 0.1}, "not a state_dict"),
    }


@pytest.mark.parametrize("case", list(_bad_state_dicts()))
def test_bad_state_dicts_raise(tmp_path, case):
    obj, msg = _bad_state_dicts()[case]
    path = _save_sd(obj, tmp_path / f"{case}.model")
    with pytest.raises(JaxfuseError, match=msg):
        checkpoint.load_params(path)


def test_bad_files_raise(tmp_path):
    text = tmp_path / "notes.model"
    text.write_text("this is not a checkpoint\n")
    with pytest.raises(JaxfuseError, match="not a PyTorch checkpoint"):
        checkpoint.load_params(text)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(JaxfuseError, match="empty file"):
        checkpoint.load_params(empty)
    with pytest.raises(JaxfuseError, match="no such file"):
        torch_io.load_torch_checkpoint(tmp_path / "missing.model")
    pickled = tmp_path / "whole_model.pth"
    torch.save(ref.TorchRes2NetFuse(), pickled)  # torch.save(model), not its state_dict
    with pytest.raises(JaxfuseError, match=r"pickled Python object .*state_dict\(\)"):
        checkpoint.load_params(pickled)


def test_missing_torch_is_explained(tmp_path, monkeypatch):
    path = _save_sd(ref.TorchRes2NetFuse().state_dict(), tmp_path / "m.model")
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(ImportError, match=r"pip install 'jaxfuse\[torch\]'") as err:
        checkpoint.load_params(path)
    assert isinstance(err.value, JaxfuseError)


# ----------------------------------------------------------------------------- the converter

@pytest.mark.slow
def test_convert_cli_both_directions(tmp_path):
    net = ref.random_model(seed=7, shared=True)
    src = _save_sd(net.state_dict(), tmp_path / "authors.model")
    ckpt = tmp_path / "ckpt"
    r = _run_convert(str(src), str(ckpt))
    assert r.returncode == 0, r.stderr
    assert "shared form" in r.stdout
    params, config = checkpoint.load_params(ckpt)
    assert config == model.ModelConfig(shared=True)
    x = _images(14, 1)
    with torch.no_grad():
        want = _to_nhwc(net(_nchw(x)))
    _assert_close(reconstruct_jit(params, _nhwc(x)), want)

    back = tmp_path / "back.model"
    r = _run_convert(str(ckpt), str(back))
    assert r.returncode == 0, r.stderr
    net2 = ref.TorchRes2NetFuse(shared=True).eval()
    net2.load_state_dict(torch.load(back, weights_only=True, map_location="cpu"), strict=True)
    for k, v in net.state_dict().items():  # .model → Orbax → .model is lossless
        assert torch.equal(net2.state_dict()[k], v), k


@pytest.mark.slow
def test_convert_cli_error_is_one_line(tmp_path):
    bad = tmp_path / "bad.model"
    bad.write_text("hello\n")
    r = _run_convert(str(bad), str(tmp_path / "out"))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "not a PyTorch checkpoint" in lines[0]
    assert not (tmp_path / "out").exists()


def test_convert_separate_form_round_trip(tmp_path, capsys):
    net = ref.random_model(seed=8, shared=False)
    src = _save_sd(net.state_dict(), tmp_path / "separate.pth")
    rc, out, err = _main(str(src), str(tmp_path / "ck"), capsys=capsys)
    assert rc == 0, err
    assert "separate-convs form" in out
    rc, _, err = _main(str(tmp_path / "ck"), str(tmp_path / "back.pt"), capsys=capsys)
    assert rc == 0, err
    sd = torch.load(tmp_path / "back.pt", weights_only=True, map_location="cpu")
    assert set(sd) == set(net.state_dict())
    assert all(torch.equal(sd[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize("case", ["missing", "wrong_shape"])
def test_convert_bad_state_dict(tmp_path, capsys, case):
    obj, msg = _bad_state_dicts()[case]
    src = _save_sd(obj, tmp_path / "bad.model")
    rc, _, err = _main(str(src), str(tmp_path / "out"), capsys=capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert re.search(msg, lines[0])


def test_convert_refuses_to_overwrite(tmp_path, capsys):
    src = _save_sd(ref.random_model(seed=9).state_dict(), tmp_path / "a.model")
    ck = tmp_path / "ck"
    assert _main(str(src), str(ck), capsys=capsys)[0] == 0
    out_model = tmp_path / "b.model"
    out_model.write_bytes(b"keep me")
    for dst in (ck, out_model):
        rc, _, err = _main(str(src), str(dst), capsys=capsys)
        assert rc == 2 and "exists; pass --overwrite" in err
    assert out_model.read_bytes() == b"keep me"
    # --overwrite replaces a checkpoint folder (not merging steps) and a file.
    assert _main(str(src), str(ck), "--overwrite", capsys=capsys)[0] == 0
    assert sorted(p.name for p in ck.iterdir()) == ["0"]
    assert _main(str(ck), str(out_model), "--overwrite", capsys=capsys)[0] == 0
    assert checkpoint.load_params(out_model)[1] == model.ModelConfig(shared=True)
    # ... but never a folder that is not a checkpoint.
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("x")
    rc, _, err = _main(str(src), str(precious), "--overwrite", capsys=capsys)
    assert rc == 2 and "not a jaxfuse checkpoint" in err
    assert (precious / "thesis.tex").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.model", "b.model", "ck", "precious"]
