"""An independent PyTorch implementation of Res2NetFuse, for tests and benchmarks.

The PyTorch baseline of ``python -m jaxfuse.bench`` and the reference of the
interoperability tests. It imports ``torch`` (an optional dependency): nothing
else in :mod:`jaxfuse` imports this module unless torch is installed.

Written from the specification of the network (SPEC.md; not from the JAX code), with the
module names of the authors' PyTorch code so that ``state_dict()`` has exactly
the keys of their checkpoints::

    conv.0.conv.{weight,bias}             3×3   1 → 32   ReLU
    conv.1.conv.{weight,bias}             3×3  32 → 64   ReLU  (= c)
    res2netBlock.0.conv.{weight,bias}     1×1  64 → 64   ReLU
    res2netBlock.1.conv.conv.{weight,bias}  3×3 16 → 16 ReLU, the ONE shared conv of F
    res2netBlock.2.conv.{weight,bias}     1×1  64 → 64   ReLU
    decoder.{0,1,2,3}.conv.{weight,bias}  3×3  64 → 64 → 32 → 16 → 1 (ReLU on all but the last)

The encoder's output is ``φ = c + res2netBlock(c)``.

The separate-convs form (``shared=False``, paper Table I: every group has its
own pair of convs) replaces ``res2netBlock.1.conv`` by
``res2netBlock.1.convs.{g}.{j}`` (group ``g = 0..2`` for x2..x4, application
``j = 0, 1``); that naming is jaxfuse's own extension, not the authors'.

Conventions: NCHW ``float32``, values 0–255 (no normalisation, as the
authors), zero padding 1 for the 3×3 convs, stride 1, every conv with bias.
The ReLUs are not in-place (the authors' are; same values).

Fusion strategies (SPEC "Fusion layer", two sources as in the authors' code):

* :func:`l1_fusion`: a_i = Σ_c |φ_i|, w_i = a_i / (a_1 + a_2), per pixel, no
  epsilon (a pixel where both sources have zero activity gives NaN, as in the
  authors' code).
* :func:`mean_fusion`: m_i = channel mean, min–max normalised per image
  (``(m − min)/(max − min + 1e-5)``), w_i = exp(m_i)/(exp(m_1) + exp(m_2) + 1e-5).
  The authors take the min and max over the whole batch tensor; they fuse one
  image at a time, where the two agree. Here it is per image.
* :func:`addition_fusion`: φ_1 + φ_2.

:func:`to_uint8` is the authors' output step: per image
``(o − min)/(max − min + 1e-5)·255`` cast to uint8 (truncation).
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

EPS = 1e-5  # the authors' EPSILON, in the mean strategy and the output step
SCALE = 4   # Res2Net groups


class ConvLayer(nn.Module):
    """Conv2d (stride 1, "same" zero padding, bias) + optional ReLU; param key ``conv.*``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, relu: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=1,
                              padding=kernel_size // 2, bias=True)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return F.relu(y) if self.relu else y


class Res2NetBlock(nn.Module):
    """The hierarchical split: y1 = x1, y2 = F(x2), y_i = F(x_i + y_{i-1}), concat.

    ``F`` is a 3×3 16→16 conv with ReLU applied twice; with ``shared=True`` one
    conv serves both applications in every group (authors' code), otherwise
    each group g and application j has its own ``convs[g][j]``.
    """

    def __init__(self, channels: int = 64, *, shared: bool = True):
        super().__init__()
        self.width = channels // SCALE
        self.shared = shared
        if shared:
            self.conv = ConvLayer(self.width, self.width, 3)
        else:
            self.convs = nn.ModuleList(
                nn.ModuleList(ConvLayer(self.width, self.width, 3) for _ in range(2))
                for _ in range(SCALE - 1))

    def _f(self, group: int, x: torch.Tensor) -> torch.Tensor:
        if self.shared:
            return self.conv(self.conv(x))
        first, second = self.convs[group]
        return second(first(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs = torch.split(x, self.width, dim=1)
        ys = [xs[0]]
        for i in range(1, SCALE):
            inp = xs[i] if i == 1 else xs[i] + ys[-1]
            ys.append(self._f(i - 1, inp))
        return torch.cat(ys, dim=1)


class TorchRes2NetFuse(nn.Module):
    """Res2NetFuse in PyTorch with the authors' parameter names.

    Args:
      shared: one conv for every application of F in the Res2Net block (the
        authors' code) or a separate pair per group (Table I).

    Images are NCHW ``(N, 1, H, W)`` float32, 0–255; features ``(N, 64, H, W)``.
    """

    def __init__(self, shared: bool = True):
        super().__init__()
        self.shared = shared
        self.conv = nn.Sequential(ConvLayer(1, 32, 3), ConvLayer(32, 64, 3))
        self.res2netBlock = nn.Sequential(
            ConvLayer(64, 64, 1), Res2NetBlock(64, shared=shared), ConvLayer(64, 64, 1))
        self.decoder = nn.Sequential(
            ConvLayer(64, 64, 3), ConvLayer(64, 32, 3), ConvLayer(32, 16, 3),
            ConvLayer(16, 1, 3, relu=False))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """φ = c + res2netBlock(c), c = conv(x): ``(N, 1, H, W)`` → ``(N, 64, H, W)``."""
        _check(x, 1, "images")
        c = self.conv(x)
        return c + self.res2netBlock(c)

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """``(N, 64, H, W)`` → ``(N, 1, H, W)``, unclipped."""
        _check(f, 64, "features")
        return self.decoder(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The training network: decode(encode(x))."""
        return self.decode(self.encode(x))

    def fuse(self, x1: torch.Tensor, x2: torch.Tensor, strategy: str = "l1") -> torch.Tensor:
        """decode(strategy(encode(x1), encode(x2))), before the output step."""
        return self.decode(STRATEGIES[strategy](self.encode(x1), self.encode(x2)))


def _check(x: torch.Tensor, channels: int, what: str) -> None:
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{what} must be NCHW with C={channels}, got {tuple(x.shape)}")


def l1_fusion(f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
    """l1-norm strategy (paper Eq. 5–6), per pixel: w_i = ‖φ_i‖₁ / (‖φ_1‖₁ + ‖φ_2‖₁)."""
    a1 = f1.abs().sum(dim=1, keepdim=True)
    a2 = f2.abs().sum(dim=1, keepdim=True)
    total = a1 + a2
    return (a1 / total) * f1 + (a2 / total) * f2


def _minmax(m: torch.Tensor) -> torch.Tensor:
    lo = m.amin(dim=(2, 3), keepdim=True)
    hi = m.amax(dim=(2, 3), keepdim=True)
    return (m - lo) / (hi - lo + EPS)


def mean_fusion(f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
    """Mean ("soft-max") strategy (paper Eq. 7–8 with the authors' epsilons)."""
    e1 = torch.exp(_minmax(f1.mean(dim=1, keepdim=True)))
    e2 = torch.exp(_minmax(f2.mean(dim=1, keepdim=True)))
    denom = e1 + e2 + EPS
    return (e1 / denom) * f1 + (e2 / denom) * f2


def addition_fusion(f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
    """φ_1 + φ_2."""
    return f1 + f2


STRATEGIES = {"l1": l1_fusion, "mean": mean_fusion, "addition": addition_fusion}


def to_uint8(out: torch.Tensor) -> torch.Tensor:
    """The authors' output step per image: (o − min)/(max − min + 1e-5)·255, truncated to uint8."""
    lo = out.amin(dim=(1, 2, 3), keepdim=True)
    hi = out.amax(dim=(1, 2, 3), keepdim=True)
    return ((out - lo) / (hi - lo + EPS) * 255.0).to(torch.uint8)


def random_model(seed: int = 0, *, shared: bool = True, scaled: bool = True) -> TorchRes2NetFuse:
    """A model with seeded random weights, in eval mode.

    With ``scaled=False`` the weights are PyTorch's default initialisation,
    under which activations shrink layer by layer (kernel variance
    1/(3·fan_in): each conv + ReLU divides the RMS by about √6), so a 12-conv
    path turns 0–255 inputs into outputs near the biases. ``scaled=True`` draws He-normal kernels
    (std √(2/fan_in), which keeps the activation scale through ReLU layers)
    and N(0, 1) biases, so every layer, bias included, shapes outputs of
    0–255 magnitude: the test signal that weight-mapping bugs cannot hide in.
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = TorchRes2NetFuse(shared=shared)
    if scaled:
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.Conv2d):
                    fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                    m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen))
    return model.eval()
