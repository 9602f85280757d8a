"""Bad input: one test per row of the README table "Bad input and what happens".

Every case goes through the real scripts, ``fuse.py`` and ``train.py``, and
checks the contract: a one-line ``error: <file>: <problem>`` naming the file
at fault, a non-zero exit (2 bad input, 3 partial success), no traceback, and
every good pair in the folder still fused, with a summary at the end listing
what was skipped and why. The cases the issue names run the scripts in a
subprocess (``cli``); the rest call the same ``main`` through
:func:`jaxfuse.cli.run_main` in this process (``inproc``), which is the same
code without paying for a fresh interpreter and JAX import per case. The
checkpoint-corruption cases stay in subprocesses: TensorStore's stray
reports after a failed read appear at interpreter level.

The mode table of :mod:`jaxfuse.io` is checked value by value, the checkpoint
checks of :mod:`jaxfuse.checkpoint` file by file, and ``io.load_image`` is
fuzzed with random, truncated and bit-flipped bytes (it may raise only
``JaxfuseError``).

Sizes are tiny (16×16 to 24×20) and the model is a 2-step training run at
``--size 16``, built once per session.
"""

from __future__ import annotations

import importlib.util
import io as _io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from jaxfuse import checkpoint, fusion, io, model
from jaxfuse.errors import JaxfuseError
from jaxfuse.strategies import STRATEGIES

REPO = Path(__file__).resolve().parents[1]
from conftest import SCRIPT_ENV as ENV  # noqa: E402  (CPU, shared compile cache)


H, W = 20, 24


def cli(script: str, *args, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / script), *map(str, args)], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


_SCRIPTS = {}


def _script(name: str):
    if name not in _SCRIPTS:
        spec = importlib.util.spec_from_file_location(f"_jaxfuse_script_{name[:-3]}", REPO / name)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        _SCRIPTS[name] = mod
    return _SCRIPTS[name]


@pytest.fixture
def inproc(capfd):
    """``inproc(script, *args)``: the script's ``main`` through ``run_main``, as ``__main__`` does."""
    from jaxfuse.cli import run_main

    def run(script: str, *args) -> subprocess.CompletedProcess:
        argv = [str(a) for a in args]
        capfd.readouterr()
        try:
            code = run_main(_script(script).main, argv)
        except SystemExit as e:  # argparse's own exit
            code = e.code
        out, err = capfd.readouterr()
        return subprocess.CompletedProcess([script, *argv], code, out, err)
    return run


def assert_one_line_error(r, code: int, *words: str) -> str:
    """The whole run failed: exactly one stderr line ``error: ...`` holding ``words``."""
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for w in words:
        assert str(w) in lines[0], (w, lines[0])
    return lines[0]


def error_line_for(r, path, *words: str) -> str:
    """The summary line ``error: <path>: <problem>`` for one skipped file."""
    lines = [l for l in r.stderr.splitlines() if l.startswith(f"error: {path}: ")]
    assert len(lines) == 1, (str(path), r.stderr)
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def save(path: Path, array, mode: str | None = None, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = array if isinstance(array, Image.Image) else Image.fromarray(np.asarray(array), mode)
    img.save(path, **kw)
    return path


def noise(rng, shape=(H, W)):
    return rng.integers(0, 256, shape, dtype=np.uint8)


def png_bytes(a) -> bytes:
    b = _io.BytesIO()
    Image.fromarray(a).save(b, format="PNG")
    return b.getvalue()


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        img.load()
        assert img.format == "PNG"
        return np.asarray(img)


# --------------------------------------------------------------------------- fixtures


def tiny_training_run(base: Path) -> Path:
    """A real training run, ``TrainConfig(steps=2, size=16, checkpoint_every=1)``; its workdir.

    Made by ``train.py`` in a subprocess, which fills the session's compilation
    cache for the other script runs at ``--size 16``; kept under the session's
    base temp folder, so the three robustness test files train it once.
    """
    root = base / "jaxfuse-tiny-run"
    if not (root / "summary.json").is_file():
        r = cli("train.py", "--workdir", root, "--size", "16", "--steps", "2", "--checkpoint-every", "1",
                "--no-progress", "--overwrite")
        assert r.returncode == 0, r.stderr
    return root


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    return tiny_training_run(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def ckpt(tiny_run) -> Path:
    return tiny_run / "checkpoints"


@pytest.fixture(scope="session")
def trained_params(ckpt):
    return checkpoint.load_params(ckpt)[0]


# ------------------------------------------------------------- one folder, every bad pair

# name -> (file that must be named, words in its line); the files are made in `mixed`.
BAD_PAIRS = {
    "missing visible partner": ("ir/no_vis.png", "no visible partner; pair skipped"),
    "missing infrared partner": ("vis/no_ir.png", "no infrared partner; pair skipped"),
    "duplicate stems": ("ir/dup.jpg", "duplicate name 'dup': dup.jpg, dup.png; pair skipped"),
    "0-byte image": ("ir/empty.png", "empty file (0 bytes)"),
    "random bytes": ("vis/garbage.png", "not an image file Pillow can read"),
    "text file named .png": ("vis/text.png", "not an image file Pillow can read"),
    "truncated PNG": ("ir/truncated.png", "truncated or corrupt image"),
    "truncated JPEG": ("vis/truncjpg.jpg", "truncated or corrupt image"),
    "mismatched sizes": ("vis/mismatch.png", "size 24×21 differs from its infrared partner mismatch.png (24×20)"),
    "32-bit integer TIFF": ("ir/int32.tif", "32-bit integer image"),
    "float outside [0, 255]": ("ir/float_range.tif", "float image with values in [0, 300]"),
    "float with NaN": ("ir/float_nan.tif", "float image contains NaN or Inf"),
}

GOOD_PAIRS = {  # name -> expected output shape
    "gray": (H, W), "colour": (H, W, 3), "one_px": (1, 1), "one_row": (1, 9), "one_col": (7, 1),
    "all_0": (H, W), "all_255": (H, W), "one_bright_px": (H, W),
    "mode_16bit": (H, W), "mode_rgba": (H, W, 3), "mode_palette": (H, W, 3), "mode_cmyk": (H, W, 3),
    "mode_float": (H, W), "mode_1bit": (H, W), "mode_la": (H, W), "gray_as_rgb": (H, W),
}


def make_mixed_folder(d: Path) -> None:
    rng = np.random.default_rng(0)
    ir, vis = d / "ir", d / "vis"
    g = lambda shape=(H, W): noise(rng, shape)  # noqa: E731
    for name, shape in GOOD_PAIRS.items():
        if name.startswith("mode_") or name == "gray_as_rgb":
            continue
        a = b = g(shape[:2])
        if name == "all_0":
            a = b = np.zeros((H, W), np.uint8)
        elif name == "all_255":
            a = b = np.full((H, W), 255, np.uint8)
        elif name == "one_bright_px":
            a = np.zeros((H, W), np.uint8)
            a[5, 7] = 255
            b = np.zeros((H, W), np.uint8)
        else:
            b = g(shape) if name == "colour" else g(shape[:2])
        save(ir / f"{name}.png", a)
        save(vis / f"{name}.png", b)
    # modes: one side in the mode, the other plain gray
    save(ir / "mode_16bit.png", (g().astype(np.uint16) * 257))
    save(vis / "mode_rgba.png", np.dstack([g((H, W, 3)), g()]), "RGBA")
    pal = Image.fromarray(g((H, W, 3)), "RGB").quantize(16)
    save(vis / "mode_palette.png", pal)
    save(vis / "mode_cmyk.tif", Image.fromarray(g((H, W, 3)), "RGB").convert("CMYK"))
    save(ir / "mode_float.tif", g().astype(np.float32) / 255.0)
    save(vis / "mode_1bit.png", Image.fromarray(g() > 127))
    save(vis / "mode_la.png", np.dstack([g(), g()]), "LA")
    save(vis / "gray_as_rgb.png", np.repeat(g()[..., None], 3, axis=-1))
    for name in ("mode_rgba", "mode_palette", "mode_cmyk", "mode_1bit", "mode_la", "gray_as_rgb"):
        save(ir / f"{name}.png", g())
    for name in ("mode_16bit", "mode_float"):
        save(vis / f"{name}.png", g())
    # bad pairs
    save(ir / "no_vis.png", g())
    save(vis / "no_ir.png", g())
    save(ir / "dup.png", g())
    save(ir / "dup.jpg", g())
    save(vis / "dup.png", g())
    (ir / "empty.png").write_bytes(b"")
    save(vis / "empty.png", g())
    save(ir / "garbage.png", g())
    (vis / "garbage.png").write_bytes(rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
    save(ir / "text.png", g())
    (vis / "text.png").write_text("this is not an image\n")
    full = png_bytes(g())
    (ir / "truncated.png").write_bytes(full[: len(full) // 2])
    save(vis / "truncated.png", g())
    save(ir / "truncjpg.png", g())
    jpg = _io.BytesIO()
    Image.fromarray(g((H, W, 3))).save(jpg, format="JPEG")
    (vis / "truncjpg.jpg").write_bytes(jpg.getvalue()[: len(jpg.getvalue()) // 2])
    save(ir / "mismatch.png", g((H, W)))
    save(vis / "mismatch.png", g((H + 1, W)))
    save(ir / "int32.tif", g().astype(np.int32))
    save(vis / "int32.png", g())
    save(ir / "float_range.tif", np.linspace(0, 300, H * W, dtype=np.float32).reshape(H, W))
    save(vis / "float_range.png", g())
    nan = g().astype(np.float32)
    nan[3, 3] = np.nan
    save(ir / "float_nan.tif", nan)
    save(vis / "float_nan.png", g())
    # ignored silently: non-image suffixes, hidden files, a stale temp of a killed run
    (ir / "notes.txt").write_text("calibration notes\n")
    (vis / ".DS_Store").write_bytes(b"\0\1\2")
    save(ir / ".gray.png.12345.abcdefgh.tmp", g(), format="PNG")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, ckpt):
    """One fuse.py run over a folder holding every bad-pair case and the good pairs."""
    d = tmp_path_factory.mktemp("mixed")
    make_mixed_folder(d / "pairs")
    out = d / "out"
    r = cli("fuse.py", "--pairs", d / "pairs", "--out", out, "--checkpoint", ckpt, "--no-progress")
    return d / "pairs", out, r


def test_mixed_folder_exit_code_and_no_traceback(mixed):
    _, _, r = mixed
    assert r.returncode == 3, r.stderr  # partial success
    assert "Traceback" not in r.stderr + r.stdout
    assert f"fused {len(GOOD_PAIRS)} pair(s)" in r.stdout


@pytest.mark.parametrize("case", list(BAD_PAIRS))
def test_bad_pair_is_named_and_skipped(mixed, case):
    pairs, out, r = mixed
    rel, words = BAD_PAIRS[case]
    error_line_for(r, pairs / rel, words)
    assert not (out / f"{Path(rel).stem}.png").exists()


def test_summary_lists_every_skip_once(mixed):
    _, _, r = mixed
    lines = r.stderr.strip().splitlines()
    assert lines[0] == f"skipped {len(BAD_PAIRS)} problem(s):", r.stderr
    assert len(lines) == 1 + len(BAD_PAIRS)
    assert all(l.startswith("error: ") for l in lines[1:])


def test_good_pairs_still_fused(mixed):
    pairs, out, _ = mixed
    for name, shape in GOOD_PAIRS.items():
        a = read_png(out / f"{name}.png")
        assert a.shape == shape and a.dtype == np.uint8, name
    visible = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert visible == sorted([f"{n}.png" for n in GOOD_PAIRS] + [pipeline_overview()])
    assert (pairs / "ir" / ".gray.png.12345.abcdefgh.tmp").exists()  # inputs are never touched


def pipeline_overview() -> str:
    from jaxfuse.pipeline import OVERVIEW_NAME
    return OVERVIEW_NAME


def test_flat_layout_names_that_match_nothing(tmp_path, ckpt, inproc):
    rng = np.random.default_rng(1)
    d = tmp_path / "flat"
    for n in ("IR1.png", "VIS1.png", "ir_2.png", "vis_2.png", "holiday.png", "IR3.png", "VIS4.bmp",
              "IR5.png", "IR5.jpg", "VIS5.png"):
        save(d / n, noise(rng))
    (d / "readme.txt").write_text("ignored: not an image suffix\n")
    r = inproc("fuse.py", "--pairs", d, "--out", tmp_path / "out", "--checkpoint", ckpt, "--no-progress")
    assert r.returncode == 3 and "Traceback" not in r.stderr
    error_line_for(r, d / "holiday.png", "name matches no pair pattern (IR<k>.* / VIS<k>.*); ignored")
    error_line_for(r, d / "IR3.png", "no visible partner")
    error_line_for(r, d / "VIS4.bmp", "no infrared partner")
    error_line_for(r, d / "IR5.jpg", "duplicate name '5'")
    assert "readme.txt" not in r.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("[!_]*.png")) == ["1.png", "2.png"]


def test_folder_with_only_bad_pairs_exits_2(tmp_path, ckpt, inproc):
    d = tmp_path / "pairs"
    save(d / "ir" / "a.png", noise(np.random.default_rng(2)))
    (d / "vis").mkdir()
    (d / "vis" / "a.png").write_bytes(b"")
    r = inproc("fuse.py", "--pairs", d, "--out", tmp_path / "out", "--checkpoint", ckpt, "--no-progress")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    error_line_for(r, d / "vis" / "a.png", "empty file (0 bytes)")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file(tmp_path):
    p = save(tmp_path / "a.png", noise(np.random.default_rng(3)))
    p.chmod(0)
    with pytest.raises(JaxfuseError, match="permission denied"):
        io.load_image(p)


def test_stale_temporaries_are_those_of_dead_writers(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    names = {f".a.png.{dead}.abcd_123.tmp": False,  # a killed writer's: removed
             f".a.png.{os.getpid()}.abcd_123.tmp": True,  # a live writer's: kept
             f".a.png.{dead}.short.tmp": True,  # not mkstemp's name: kept
             "a.png": True, f"a.png.{dead}.abcd_123.tmp": True}  # not hidden: kept
    for n in names:
        (tmp_path / n).write_bytes(b"x")
    removed = io.remove_stale_temps(tmp_path)
    assert sorted(p.name for p in removed) == [n for n, keep in names.items() if not keep]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(n for n, keep in names.items() if keep)


# ------------------------------------------------------------------- folder-level failures


def _folder_cases(tmp: Path):
    rng = np.random.default_rng(4)
    empty = tmp / "empty"
    empty.mkdir()
    nopairs = tmp / "nopairs"
    save(nopairs / "holiday.png", noise(rng))
    (nopairs / "notes.txt").write_text("x")
    onlyir = tmp / "onlyir"
    save(onlyir / "ir" / "1.png", noise(rng))
    afile = save(tmp / "afile.png", noise(rng))
    return {
        "missing": (tmp / "nope", "folder does not exist"),
        "empty": (empty, "holds no images"),
        "no recognisable pairs": (nopairs, "holds no usable infrared/visible pairs"),
        "ir/ without vis/": (onlyir, "has ir/ but no vis/ (or vi/)"),
        "a file, not a folder": (afile, "is not a folder"),
    }


@pytest.mark.parametrize("case", ["missing", "empty", "no recognisable pairs", "ir/ without vis/",
                                  "a file, not a folder"])
def test_folder_level_failure(tmp_path, inproc, case):
    path, words = _folder_cases(tmp_path)[case]
    # no --checkpoint: the folder is checked before any model is looked for
    run = cli if case == "missing" else inproc
    r = run("fuse.py", "--pairs", path, "--out", tmp_path / "out")
    assert_one_line_error(r, 2, f"error: {path}: {words}")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ image modes


def _load_saved(tmp_path, name, array, mode=None, **kw):
    return io.load_image(save(tmp_path / name, array, mode, **kw))


def test_mode_16bit_gray_divides_by_257(tmp_path):
    v = np.array([[0, 257, 65535, 1000, 32896]], np.uint16)
    for name in ("g.png", "g.tif", "g.pgm"):
        got = _load_saved(tmp_path, name, v)
        np.testing.assert_array_equal(got, (v / 257.0).astype(np.float32), err_msg=name)
    assert Image.open(tmp_path / "g.png").mode == "I;16"
    assert Image.open(tmp_path / "g.pgm").mode == "I"


def test_mode_32bit_integer_is_refused(tmp_path):
    with pytest.raises(JaxfuseError, match=r"g32\.tif: 32-bit integer image \(no agreed scale"):
        _load_saved(tmp_path, "g32.tif", np.array([[0, 100, 255]], np.int32))


def test_mode_rgba_drops_alpha(tmp_path):
    a = np.array([[[10, 20, 30, 0], [40, 50, 60, 128], [255, 0, 0, 255]]], np.uint8)
    got = _load_saved(tmp_path, "a.png", a, "RGBA")
    np.testing.assert_array_equal(got, a[..., :3].astype(np.float32))


def test_mode_la_drops_alpha(tmp_path):
    a = np.array([[[10, 0], [20, 255], [30, 7]]], np.uint8)
    np.testing.assert_array_equal(_load_saved(tmp_path, "la.png", a, "LA"), [[10, 20, 30]])


@pytest.mark.parametrize("transparency", [False, True])
def test_mode_palette_goes_through_its_palette(tmp_path, transparency):
    p = Image.new("P", (3, 1))
    p.putpalette([0, 0, 0, 255, 0, 0, 10, 200, 30] + [0] * 759)
    p.putdata([2, 1, 0])
    kw = {"transparency": 0} if transparency else {}
    got = _load_saved(tmp_path, "p.png", p, **kw)
    np.testing.assert_array_equal(got, [[[10, 200, 30], [255, 0, 0], [0, 0, 0]]])
    gray = Image.new("P", (2, 1))
    gray.putpalette([7, 7, 7, 99, 99, 99] + [0] * 762)
    gray.putdata([1, 0])
    np.testing.assert_array_equal(_load_saved(tmp_path, "pg.gif", gray), [[99, 7]])  # equal channels


def test_mode_cmyk_uses_pillows_conversion(tmp_path):
    c = Image.new("CMYK", (4, 1))
    c.putdata([(0, 0, 0, 0), (255, 0, 0, 0), (0, 0, 0, 255), (100, 50, 0, 20)])
    got = _load_saved(tmp_path, "c.tif", c)
    # Pillow's CMYK -> RGB (PIL/Convert.c cmyk2rgb): channel = (255 - ink)(255 - K)/255, rounded;
    # (100, 50, 0, 20): 155·235/255 = 142.8, 205·235/255 = 188.9, 255·235/255 = 235.
    np.testing.assert_array_equal(got, [[[255, 255, 255], [0, 255, 255], [0, 0, 0], [143, 189, 235]]])


def test_mode_float_tiff(tmp_path):
    np.testing.assert_array_equal(
        _load_saved(tmp_path, "f01.tif", np.array([[0, 0.5, 1, 0.25]], np.float32)),
        [[0, 127.5, 255, 63.75]])
    np.testing.assert_array_equal(
        _load_saved(tmp_path, "f255.tif", np.array([[0, 100, 255, 3.5]], np.float32)),
        [[0, 100, 255, 3.5]])
    with pytest.raises(JaxfuseError, match=r"float image with values in \[-1, 1\]"):
        _load_saved(tmp_path, "fneg.tif", np.array([[-1, 1]], np.float32))
    with pytest.raises(JaxfuseError, match="NaN or Inf"):
        _load_saved(tmp_path, "finf.tif", np.array([[0, np.inf]], np.float32))


def test_mode_1bit_is_0_or_255(tmp_path):
    b = Image.new("1", (4, 1))
    b.putdata([0, 1, 0, 1])
    for name in ("b.png", "b.tif", "b.pbm"):
        np.testing.assert_array_equal(_load_saved(tmp_path, name, b), [[0, 255, 0, 255]], err_msg=name)


def test_rgb_with_equal_channels_is_gray(tmp_path):
    a = np.repeat(np.arange(12, dtype=np.uint8).reshape(3, 4, 1), 3, axis=-1)
    got = _load_saved(tmp_path, "g.png", a)
    assert got.shape == (3, 4)
    np.testing.assert_array_equal(got, a[..., 0])


# ------------------------------------------------------------------------------ fuzzing

_SEEDS = {}


def _seed_files() -> dict:
    if not _SEEDS:
        rng = np.random.default_rng(5)
        g, c = noise(rng, (9, 13)), noise(rng, (9, 13, 3))
        for fmt, img, kw in [
                ("PNG", Image.fromarray(g), {}), ("PNG", Image.fromarray(c).quantize(8), {}),
                ("PNG", Image.fromarray(g.astype(np.uint16) * 257), {}),
                ("JPEG", Image.fromarray(c), {}), ("BMP", Image.fromarray(c), {}),
                ("TIFF", Image.fromarray(c), {"compression": "tiff_lzw"}),
                ("TIFF", Image.fromarray(g.astype(np.float32)), {}), ("GIF", Image.fromarray(g), {}),
                ("WEBP", Image.fromarray(c), {}), ("PPM", Image.fromarray(g), {})]:
            b = _io.BytesIO()
            try:
                img.save(b, format=fmt, **kw)
            except (OSError, KeyError):  # a Pillow built without this codec
                continue
            _SEEDS[f"{fmt}-{img.mode}-{len(_SEEDS)}"] = b.getvalue()
    return _SEEDS


@pytest.fixture(scope="module")
def fuzz_file(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz") / "x.png"


def _check_load(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        a = io.load_image(path)
    except JaxfuseError as e:
        assert e.path == str(path) and e.problem and "\n" not in str(e)
        return
    assert a.dtype == np.float32 and a.ndim in (2, 3) and a.size > 0
    assert np.all(np.isfinite(a)) and a.min() >= 0 and a.max() <= 255


@pytest.fixture
def few_pixels(monkeypatch):
    # A flipped header byte can claim gigapixel dimensions; refuse those quickly
    # instead of allocating them (the refusal path is the one under test).
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1 << 16)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=0, max_size=400))
def test_fuzz_random_bytes(fuzz_file, few_pixels, data):
    _check_load(fuzz_file, data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.sampled_from(sorted(_seed_files())), cut=st.floats(0, 1),
       flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=6))
def test_fuzz_truncated_and_flipped_images(fuzz_file, few_pixels, seed, cut, flips):
    data = bytearray(_seed_files()[seed])
    data = data[: max(1, int(len(data) * cut))] if cut < 0.5 else data
    for where, value in flips:
        data[min(len(data) - 1, int(where * len(data)))] = value
    _check_load(fuzz_file, bytes(data))


def test_decompression_bomb_guard_message(tmp_path, monkeypatch):
    p = save(tmp_path / "big.png", np.zeros((64, 64), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(JaxfuseError, match=r"big\.png: image is larger than 2,000 pixels"):
        io.load_image(p)


# ------------------------------------------------------------------------------ checkpoints


def _corrupt(ck: Path, how: str) -> Path:
    step = ck / "2"
    data_files = [f for f in (step / "params").rglob("*") if f.is_file() and f.parent.name == "d"]
    meta = step / "meta" / "metadata"
    if how == "garbled Orbax data":
        for f in data_files:
            b = bytearray(f.read_bytes())
            b[len(b) // 3: len(b) // 3 + 64] = b"\xff" * 64
            f.write_bytes(bytes(b))
    elif how == "truncated Orbax data":
        for f in data_files:
            f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2])
    elif how == "garbled Orbax manifest":
        for f in (step / "params").rglob("manifest.ocdbt"):
            f.write_bytes(b"junk")
    elif how == "params item missing":
        shutil.rmtree(step / "params")
    else:
        m = json.loads(meta.read_text())
        if how == "meta of another format":
            m["format"] = "someone-elses-checkpoint-7"
        elif how == "meta is not JSON":
            meta.write_text("{not json")
            return step
        elif how == "meta without version":
            del m["jaxfuse_version"]
        elif how == "meta config does not match params":
            m["model"]["shared"] = False
        elif how == "meta config of wrong type":
            m["model"]["shared"] = "no"
        elif how == "meta of another architecture":
            m["model"]["arch"] = "densefuse"
        elif how == "meta of an unknown architecture":
            m["model"]["arch"] = "unet"
        meta.write_text(json.dumps(m))
    return step


CKPT_CASES = {  # how -> (words in the message, which path it names: "step" or "meta")
    "garbled Orbax data": ("corrupt or mismatched checkpoint (", "step"),
    "truncated Orbax data": ("corrupt or mismatched checkpoint (", "step"),
    "garbled Orbax manifest": ("corrupt or mismatched checkpoint (", "step"),
    "params item missing": ("not a complete jaxfuse checkpoint (no params item)", "step"),
    "meta of another format": ("not a jaxfuse-checkpoint-1 checkpoint (format 'someone-elses-checkpoint-7')", "meta"),
    "meta is not JSON": ("corrupt checkpoint metadata (JSONDecodeError)", "meta"),
    "meta without version": ("corrupt checkpoint metadata (no jaxfuse_version)", "meta"),
    "meta config does not match params": (
        "params do not match the model config recorded in meta (ModelConfig(arch='res2netfuse', "
        "shared=False)): missing encoder/res2net/conv3_g0_0/bias", "step"),
    "meta config of wrong type": ("checkpoint has an unusable model config (shared='no', expected bool)", "step"),
    "meta of another architecture": (
        "params do not match the model config recorded in meta (ModelConfig(arch='densefuse'", "step"),
    "meta of an unknown architecture": ("checkpoint is for an unknown architecture 'unet'", "step"),
}


@pytest.fixture(scope="module")
def one_pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("onepair")
    rng = np.random.default_rng(6)
    save(d / "ir" / "a.png", noise(rng))
    save(d / "vis" / "a.png", noise(rng))
    return d


@pytest.mark.parametrize("how", list(CKPT_CASES))
def test_bad_checkpoint(tmp_path, ckpt, one_pair, inproc, how):
    ck = tmp_path / "ck"
    shutil.copytree(ckpt, ck)
    step = _corrupt(ck, how)
    words, which = CKPT_CASES[how]
    named = step if which == "step" else step / "meta" / "metadata"
    run = cli if "Orbax" in how else inproc
    r = run("fuse.py", "--pairs", one_pair, "--out", tmp_path / "out", "--checkpoint", ck, "--no-progress")
    assert_one_line_error(r, 2, f"error: {named}: {words}")
    assert not (tmp_path / "out" / "a.png").exists()


def test_nan_params_checkpoint(tmp_path, one_pair, inproc, params):
    cfg = model.ModelConfig()
    p = jax.tree_util.tree_map(lambda x: x, params)
    p["decoder"]["conv0"]["bias"] = p["decoder"]["conv0"]["bias"].at[3].set(jnp.nan)
    checkpoint.save(checkpoint.manager(tmp_path / "ck"), 7, p, checkpoint.make_meta(cfg, 7))
    r = inproc("fuse.py", "--pairs", one_pair, "--out", tmp_path / "out", "--checkpoint", tmp_path / "ck",
               "--no-progress")
    assert_one_line_error(r, 2, f"error: {tmp_path / 'ck' / '7'}: checkpoint parameters contain NaN or Inf")


@pytest.mark.parametrize("what", ["missing", "a pairs folder", "an empty folder", "a random file",
                                  "a garbage .model file"])
def test_not_a_checkpoint(tmp_path, one_pair, inproc, what):
    path = {"missing": tmp_path / "nope", "a pairs folder": one_pair, "an empty folder": tmp_path / "e",
            "a random file": tmp_path / "x.bin", "a garbage .model file": tmp_path / "x.model"}[what]
    if what == "an empty folder":
        path.mkdir()
    elif what in ("a random file", "a garbage .model file"):
        path.write_bytes(b"\x80\x03garbage" * 10)
    words = {"missing": "checkpoint does not exist",
             "a pairs folder": "not a jaxfuse checkpoint (no step folders with params and meta)",
             "an empty folder": "not a jaxfuse checkpoint (no step folders with params and meta)",
             "a random file": "not a jaxfuse checkpoint folder (and not a .model/.pt/.pth file)",
             "a garbage .model file": ""}[what]
    run = cli if what == "a pairs folder" else inproc
    r = run("fuse.py", "--pairs", one_pair, "--out", tmp_path / "out", "--checkpoint", path, "--no-progress")
    line = assert_one_line_error(r, 2, f"error: {path}: {words}")
    if what == "a garbage .model file":  # torch may be absent: either way a one-line refusal
        assert "PyTorch" in line or "torch" in line


def test_checkpoint_of_other_architecture_config_is_read_from_meta(tmp_path, one_pair, inproc):
    """A --separate-convs checkpoint is no error for fuse.py: the config comes from meta."""
    cfg = model.ModelConfig(shared=False)
    # random weights of the right shapes (jax.eval_shape: no init compile needed)
    rng = np.random.default_rng(7)
    p = jax.tree_util.tree_map(lambda s: jnp.asarray(rng.normal(0, 0.05, s.shape), s.dtype),
                               checkpoint.abstract_params(cfg))
    checkpoint.save(checkpoint.manager(tmp_path / "ck"), 3, p, checkpoint.make_meta(cfg, 3))
    r = inproc("fuse.py", "--pairs", one_pair, "--out", tmp_path / "out", "--checkpoint", tmp_path / "ck",
            "--no-progress")
    assert r.returncode == 0, r.stderr
    assert read_png(tmp_path / "out" / "a.png").shape == (H, W)
    # ...but a caller that insists on the shared architecture gets a clean refusal
    with pytest.raises(JaxfuseError, match=r"checkpoint is for ModelConfig\(.*shared=False\), not"):
        checkpoint.load_params(tmp_path / "ck", config=model.ModelConfig(shared=True))


def test_checkpoint_records_config_and_version(ckpt):
    from jaxfuse import __version__
    _, meta = checkpoint.latest_meta(ckpt)
    assert meta["format"] == checkpoint.FORMAT and meta["jaxfuse_version"] == __version__
    assert meta["model"] == model.ModelConfig().to_dict() and meta["train"]["size"] == 16


# ----------------------------------------------------------------------------- bad flags


@pytest.mark.parametrize("args,words", [
    (["--strategy", "median"], "argument --strategy: invalid choice: 'median'"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["--out", "{pairs}"], "{pairs}: --out is an input folder"),
    (["--out", "{pairs}/ir"], "{pairs}/ir: --out is an input folder"),
    (["--out", "{pairs}/ir/a.png"], "{pairs}/ir/a.png: --out exists and is not a folder"),
], ids=["unknown strategy", "unknown flag", "out is pairs", "out is ir", "out is a file"])
def test_fuse_bad_flags(one_pair, tmp_path, inproc, args, words):
    args = [a.format(pairs=one_pair) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    # a non-existent --checkpoint: the flags must be refused before any model is read
    run = cli if args[0] in ("--strategy", "--frobnicate") or args[1] == str(one_pair) else inproc
    r = run("fuse.py", "--pairs", one_pair, "--checkpoint", tmp_path / "nope", *args)
    assert_one_line_error(r, 2, words.format(pairs=one_pair))
    assert sorted(p.name for p in (one_pair / "ir").iterdir()) == ["a.png"]


def test_fuse_without_pairs_flag(inproc):
    r = inproc("fuse.py")
    assert_one_line_error(r, 2, "the following arguments are required: --pairs")


@pytest.mark.parametrize("args,words", [
    (["--steps", "-5"], "error: --steps must be a positive integer, got -5"),
    (["--steps", "0"], "error: --steps must be a positive integer, got 0"),
    (["--steps", "ten"], "argument --steps: invalid int value: 'ten'"),
    (["--lr", "-1"], "error: --lr must be a positive number, got -1.0"),
    (["--lr", "nan"], "error: --lr must be a positive number, got nan"),
    (["--size", "8"], "error: --size 8 is below the 11 pixels the ssim loss needs"),
    (["--size", "64", "--loss", "msssim"], "error: --size 64 is below the 176 pixels the msssim loss needs"),
    (["--checkpoint-every", "0"], "error: --checkpoint-every must be positive, got 0"),
    (["--loss", "l2"], "argument --loss: invalid choice: 'l2'"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--resume", "--overwrite"], "--resume and --overwrite contradict each other"),
], ids=["negative steps", "zero steps", "steps not int", "negative lr", "nan lr", "size below ssim",
        "size below msssim", "zero checkpoint-every", "unknown loss", "unknown flag", "resume+overwrite"])
def test_train_bad_flags(tmp_path, inproc, args, words):
    run = cli if args[0] in ("--bogus", "--size") or args[1] == "-5" else inproc
    r = run("train.py", "--workdir", tmp_path / "w", "--no-progress", *args)
    assert_one_line_error(r, 2, words)
    assert not (tmp_path / "w").exists()


def test_train_bad_images(tmp_path, inproc):
    tiny = save(tmp_path / "tiny.png", np.full((1, 1), 9, np.uint8))
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not a jpeg")
    for image, words in [(tiny, "image of 1×1 is too small to train on"), (empty, "empty file (0 bytes)"),
                         (junk, "not an image file Pillow can read"), (tmp_path / "nope.png", "no such file"),
                         (tmp_path, "is a folder, not an image")]:
        run = cli if image == tiny else inproc
        r = run("train.py", "--image", image, "--size", "16", "--steps", "2",
                "--workdir", tmp_path / "w", "--no-progress")
        assert_one_line_error(r, 2, f"error: {image}: {words}")
    assert not (tmp_path / "w" / "checkpoints").exists()


def test_train_workdir_is_a_file(tmp_path, inproc):
    (tmp_path / "w").write_text("x")
    r = inproc("train.py", "--workdir", tmp_path / "w", "--size", "16", "--steps", "2", "--no-progress")
    assert_one_line_error(r, 2, f"error: {tmp_path / 'w'}: --workdir exists and is not a folder")


@pytest.mark.parametrize("args,words", [
    ([], "already holds a training run; pass --resume to continue it or --overwrite to start again"),
    (["--resume", "--lr", "0.001"], "cannot resume: the checkpoint was made with different settings "
                                    "(lr=0.0005, now 0.001); pass --overwrite to start again"),
    (["--resume", "--separate-convs"], "(shared=True, now False)"),
    (["--resume", "--seed", "3"], "(seed=0, now 3)"),
    (["--resume", "--size", "17"], "(image (different pixels); size=16, now 17)"),
    (["--resume", "--steps", "1"], "checkpoint is at step 2, beyond --steps 1"),
], ids=["no --resume", "other lr", "other architecture", "other seed", "other size", "fewer steps"])
def test_train_existing_run(tmp_path, tiny_run, inproc, args, words):
    w = tmp_path / "w"
    shutil.copytree(tiny_run, w)
    before = sorted(p.name for p in (w / "checkpoints").iterdir())
    # the fixture's run: --size 16 --steps 2; a later flag overrides an earlier one
    run = cli if "--lr" in args else inproc
    r = run("train.py", "--workdir", w, "--no-progress", "--size", "16", "--steps", "2", *args)
    assert_one_line_error(r, 2, words)
    assert sorted(p.name for p in (w / "checkpoints").iterdir()) == before


@pytest.mark.parametrize("edit,words", [
    ({"history": {"total": [1.0]}}, "cannot resume: corrupt checkpoint metadata (loss history)"),
    ({"jaxfuse_version": "0.0.1"}, "cannot resume: the checkpoint was written by jaxfuse 0.0.1, this is "),
    ({"identity": None}, "cannot resume: the checkpoint records no training settings"),
], ids=["short loss history", "other jaxfuse version", "no identity"])
def test_train_resume_checks_meta(tmp_path, tiny_run, inproc, edit, words):
    w = tmp_path / "w"
    shutil.copytree(tiny_run, w)
    meta = w / "checkpoints" / "2" / "meta" / "metadata"
    m = json.loads(meta.read_text())
    for k, v in edit.items():
        m[k] = {**m[k], **v} if isinstance(v, dict) else v
    meta.write_text(json.dumps(m))
    r = inproc("train.py", "--workdir", w, "--size", "16", "--steps", "3", "--resume", "--no-progress")
    assert_one_line_error(r, 2, f"error: {w / 'checkpoints' / '2'}: {words}")


# ------------------------------------------------------------------------- numerical guards


def _extreme_batch():
    zeros = np.zeros((16, 16), np.float32)
    full = np.full((16, 16), 255, np.float32)
    bright = zeros.copy()
    bright[8, 3] = 255
    checker = (np.indices((16, 16)).sum(0) % 2 * 255).astype(np.float32)
    irs = np.stack([zeros, full, bright, checker, full, zeros])
    viss = np.stack([zeros, full, zeros, checker[::-1], zeros, full])
    return np.stack([irs, viss])[..., None]  # (2, 6, 16, 16, 1)


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_extreme_images_fuse_to_finite_values(strategy, params, trained_params):
    sources = jnp.asarray(_extreme_batch())
    for p in (params, trained_params):
        out = np.asarray(fusion.fuse(p, sources, strategy=strategy))
        assert np.all(np.isfinite(out)), strategy
        u8 = np.asarray(jax.jit(fusion.to_uint8)(out))
        assert u8.dtype == np.uint8


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_all_zero_and_extreme_features_give_finite_values(strategy):
    f = STRATEGIES[strategy]
    feats = jnp.stack([jnp.zeros((2, 5, 6, 64)), jnp.full((2, 5, 6, 64), 1e30),
                       jnp.zeros((2, 5, 6, 64)).at[0, 2, 2, 0].set(1e4)], axis=1)  # (k=2, 3, 5, 6, 64)
    out = jax.jit(f)(feats)
    assert out.shape == (3, 5, 6, 64) and bool(jnp.all(jnp.isfinite(out))), strategy
    g = jax.jit(jax.grad(lambda x: jnp.sum(f(x))))(feats)
    assert bool(jnp.all(jnp.isfinite(g))), strategy


def test_one_pixel_and_constant_pairs_through_fuse_pair(trained_params):
    for ir, vis in [(np.zeros((1, 1)), np.zeros((1, 1))), (np.full((1, 1), 255.0), np.zeros((1, 1, 3))),
                    (np.full((3, 2), 255.0), np.full((3, 2, 3), 255.0))]:
        out = fusion.fuse_pair(trained_params, ir, vis)
        assert out.dtype == np.uint8 and out.shape == vis.shape
