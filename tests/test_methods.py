"""The weight-free comparison methods through the library and ``fuse.py --method``.

Each method's own algorithm is tested in its own file (test_dchwt.py,
test_jsr.py); here: the registry, the output step, the colour path, and the
command line end to end on small images, with its errors.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from jaxfuse import color, fusion, methods, pipeline
from test_commands import jaxfuse, one_line_error, write_pairs  # noqa: F401  (fixture)


def test_registry_names_title_and_function():
    assert methods.METHOD_NAMES == ("dchwt", "jsr", "jsrsd")
    for m in methods.METHODS.values():
        assert callable(m.fuse_fn) and m.output_step in ("round", "minmax")
        assert m.title.upper() == m.name.upper()
    with pytest.raises(ValueError, match="unknown fusion method 'nope'; choose from dchwt"):
        methods.get_method("nope")


def test_source_covers_the_helper_modules_a_method_uses():
    """The stamp of cached fused images changes when any module a method uses changes."""
    import inspect

    from jaxfuse.methods import dchwt, jsr, jsr_rules, ksvd, sparse
    src = methods.get_method("jsrsd").source
    for mod in (jsr, jsr_rules, ksvd, sparse):
        assert inspect.getsource(mod) in src, mod.__name__
    assert inspect.getsource(dchwt) not in src
    assert methods.get_method("dchwt").source == inspect.getsource(dchwt)


def test_output_step_rounds_halves_up_and_clips_as_matlab_uint8(monkeypatch):
    m = methods.Method("fake", "Fake", "dchwt", "fuse", "none")
    values = np.array([[-3.0, 0.5, 1.5, 2.49, 254.5, 300.0]], np.float32)
    monkeypatch.setattr(methods.Method, "fuse_fn", property(lambda self: lambda ir, vis: values))
    got = m.fuse_gray(np.zeros((1, 6)), np.zeros((1, 6)))
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, [[0, 1, 2, 2, 255, 255]])


def test_colour_visible_fuses_its_luma_and_keeps_its_chroma(rng):
    ir = rng.uniform(0, 255, (24, 40)).astype(np.float32)
    ycc = np.stack([rng.uniform(40, 215, (24, 40)), rng.uniform(120, 136, (24, 40)),
                    rng.uniform(120, 136, (24, 40))], -1)
    vis = np.clip(np.rint(color.ycbcr_to_rgb(ycc)), 0, 255).astype(np.float32)
    m = methods.get_method("dchwt")
    out = fusion.fuse_pair(m, ir, vis)
    assert out.shape == (24, 40, 3) and out.dtype == np.uint8
    y = color.rgb_to_ycbcr(vis)[..., 0].astype(np.float32)
    want_y = m.fuse_gray(ir, y)
    got = color.rgb_to_ycbcr(out.astype(np.float32))
    inside = np.all((out > 0) & (out < 255), axis=-1)  # where no channel was clipped
    assert inside.mean() > 0.8
    assert np.abs(got[..., 0] - want_y)[inside].max() <= 1.0  # the RGB round trip rounds
    vis_ycc = color.rgb_to_ycbcr(vis)
    assert np.abs(got[..., 1:] - vis_ycc[..., 1:])[inside].max() <= 1.5  # chroma kept
    # gray visible image: the method's own uint8 output, unchanged
    np.testing.assert_array_equal(fusion.fuse_pair(m, ir, y), want_y)


def test_fuse_folder_with_a_method_writes_every_pair(tmp_path):
    pairs = write_pairs(tmp_path / "pairs", 2, shape=(20, 28))
    report = pipeline.fuse_folder(pairs, tmp_path / "out", methods.get_method("dchwt"),
                                  progress=False)
    assert [n for n, _ in report.written] == ["000", "001"] and not report.failed
    for _, path in report.written:
        assert np.asarray(Image.open(path)).shape == (20, 28)


def test_fuse_method_cli_end_to_end(jaxfuse, tmp_path):  # noqa: F811
    pairs = write_pairs(tmp_path / "pairs", 2, shape=(24, 32), colour=True)
    out = tmp_path / "fused"
    r = jaxfuse("fuse", "--pairs", pairs, "--out", out, "--method", "dchwt", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "fused 2 pair(s)" in r.stdout
    a = np.asarray(Image.open(out / "000.png"))
    assert a.shape == (24, 32, 3)
    # rerun: outputs exist, so nothing is refused or replaced
    r = jaxfuse("fuse", "--pairs", pairs, "--out", out, "--method", "dchwt", "--no-progress")
    assert r.returncode == 0 and "2 already there" in r.stdout
    # one pair
    one = tmp_path / "one.png"
    r = jaxfuse("fuse", pairs / "ir" / "001.png", pairs / "vis" / "001.png", "--out", one,
                "--method", "dchwt")
    assert r.returncode == 0 and one.is_file()


@pytest.mark.parametrize("flag", [("--strategy", "l1"), ("--checkpoint", "x"), ("--arch", "msdnet")])
def test_method_refuses_network_flags(jaxfuse, flag):  # noqa: F811
    line = one_line_error(jaxfuse("fuse", "--pairs", "x", "--method", "jsr", *flag), 2)
    assert "--method jsr has no weights" in line and flag[0] in line


def test_unknown_method_is_one_line_error(jaxfuse):  # noqa: F811
    line = one_line_error(jaxfuse("fuse", "--pairs", "x", "--method", "sparse"), 2)
    assert "--method" in line and "dchwt" in line
