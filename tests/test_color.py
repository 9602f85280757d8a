"""BT.601 colour conversions: one module, every caller bit-identical to its own formula."""

import numpy as np
import pytest

from jaxfuse import color, fusion, io
from jaxfuse.metrics import _common

SHAPES = [(1, 1, 3), (7, 9, 3), (64, 80, 3), (3, 120, 160, 3)]


def _images(rng, shape):
    return {"float32": rng.uniform(0, 255, shape).astype(np.float32),
            "float64": rng.uniform(0, 255, shape),
            "uint8": rng.integers(0, 256, shape, dtype=np.uint8),
            "int64": rng.integers(0, 256, shape)}


def _same(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()


# The formulas each caller used before jaxfuse.color held them, written out.
def _gray32_sum(rgb):
    rgb = np.asarray(rgb, dtype=np.float32)
    return (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.float32)


def _gray32_dot(rgb):
    rgb = np.asarray(rgb, np.float32)
    return (rgb @ np.array([0.299, 0.587, 0.114], np.float64).astype(np.float32)).astype(np.float32)


def _gray64_dot(rgb):
    return np.asarray(rgb).astype(np.float64) @ np.array([0.299, 0.587, 0.114], dtype=np.float64)


_RGB2YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5],
                     [0.5, -0.418688, -0.081312]], np.float64)
_YCC2RGB = np.array([[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]], np.float64)


@pytest.mark.parametrize("shape", SHAPES)
def test_callers_are_bit_identical_to_their_formulas(rng, shape):
    for kind, a in _images(rng, shape).items():
        _same(io.rgb_to_gray(a), _gray32_sum(a))
        _same(color.luma(a), _gray32_sum(a))
        _same(color.luma_dot(a, np.float32), _gray32_dot(a))
        _same(color.luma_dot(a, np.float64), _gray64_dot(a))
        if len(shape) == 3:  # the metrics take one image
            _same(_common.to_gray64(a, metric="m", name=kind), _gray64_dot(a))
        ycc = np.asarray(a, np.float64) @ _RGB2YCC.T
        ycc[..., 1:] += 128.0
        _same(color.rgb_to_ycbcr(a), ycc)
        back = ycc.copy()
        back[..., 1:] -= 128.0
        _same(color.ycbcr_to_rgb(ycc), back @ _YCC2RGB.T)


def test_fusion_keeps_its_names_and_the_tables_are_one():
    assert fusion.rgb_to_ycbcr is color.rgb_to_ycbcr and fusion.ycbcr_to_rgb is color.ycbcr_to_rgb
    assert tuple(color.RGB_TO_YCBCR[0]) == color.LUMA == (0.299, 0.587, 0.114)
    np.testing.assert_allclose(color.YCBCR_TO_RGB @ color.RGB_TO_YCBCR, np.eye(3), atol=1e-5)
    with pytest.raises(ValueError):
        color.RGB_TO_YCBCR[0, 0] = 0.3  # read-only: no caller can drift
    with pytest.raises(ValueError, match="float32 or float64"):
        color.luma_dot(np.zeros((2, 3)), np.float16)


def test_known_colours():
    rgb = np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], np.float64)
    ycc = color.rgb_to_ycbcr(rgb)
    np.testing.assert_allclose(ycc[:2], [[255, 128, 128], [0, 128, 128]], atol=1e-3)
    np.testing.assert_allclose(ycc[2:, 0], [76.245, 149.685, 29.07], atol=1e-9)
    np.testing.assert_allclose(color.luma(rgb), ycc[:, 0], rtol=1e-6)
    np.testing.assert_allclose(color.luma_dot(rgb), ycc[:, 0], rtol=1e-12)
    np.testing.assert_allclose(color.ycbcr_to_rgb(ycc), rgb, atol=1e-3)


def test_the_two_luma_forms_agree(rng):
    a = rng.uniform(0, 255, (50, 60, 3)).astype(np.float32)
    np.testing.assert_allclose(color.luma(a), color.luma_dot(a, np.float32), rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(color.luma(a), color.luma_dot(a), rtol=1e-6, atol=1e-4)
