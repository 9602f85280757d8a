"""The PyTorch side of the in-process stages: the baseline network in both memory formats, its losses.

Imports torch only when used (:class:`TorchSide` is built only when the
PyTorch baseline runs).
"""

from __future__ import annotations

import numpy as np


def _torch_ssim_parts(a, b, size, data_range, clamp=False):
    """Per-image mean SSIM and CS with a ``size`` separable Gaussian (σ 1.5), 'valid'.

    ``clamp``: dm-pix's guards (variances ≥ eps², |covariance| ≤ √(σ₁²σ₂²)).
    """
    import torch
    import torch.nn.functional as F
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(x ** 2) / (2 * 1.5 ** 2))
    g = g / g.sum()
    stack = torch.cat([a, b, a * a, b * b, a * b], dim=1)  # (N, 5, H, W)
    stack = F.conv2d(stack, g.view(1, 1, size, 1).repeat(5, 1, 1, 1), groups=5)
    stack = F.conv2d(stack, g.view(1, 1, 1, size).repeat(5, 1, 1, 1), groups=5)
    mu1, mu2, e11, e22, e12 = stack.unbind(dim=1)
    s11, s22, s12 = e11 - mu1 ** 2, e22 - mu2 ** 2, e12 - mu1 * mu2
    if clamp:
        eps = torch.finfo(torch.float32).eps ** 2
        s11, s22 = s11.clamp_min(eps), s22.clamp_min(eps)
        s12 = torch.sign(s12) * torch.minimum(torch.sqrt(s11 * s22), s12.abs())
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    v1, v2 = 2 * s12 + c2, s11 + s22 + c2
    cs = (v1 / v2).mean(dim=(1, 2))
    ssim_map = (2 * mu1 * mu2 + c1) * v1 / ((mu1 ** 2 + mu2 ** 2 + c1) * v2)
    return ssim_map.mean(dim=(1, 2)), cs


def torch_loss(kind: str):
    """PyTorch equivalents of :func:`jaxfuse.losses.loss_terms` ``total`` (batch mean)."""
    import torch
    import torch.nn.functional as F
    weights = torch.tensor([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])

    def pixel(o, t):
        return ((o - t) / 255.0).pow(2).mean()

    def ssim_loss(o, t):
        s, _ = _torch_ssim_parts(o / 255.0, t / 255.0, 11, 1.0, clamp=True)
        return (1 - s).mean() + pixel(o, t)

    def msssim_loss(o, t):
        max_val = 255.0 if o.max().item() > 128 else 1.0
        min_val = -1.0 if o.min().item() < -0.5 else 0.0
        rng = max_val - min_val
        a, b = o, t
        sims, css = [], []
        for level in range(5):
            size = min(11, a.shape[2], a.shape[3])
            s, c = _torch_ssim_parts(a, b, size, rng)
            sims.append(s)
            css.append(c)
            if level < 4:
                a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
        sims = (torch.stack(sims, -1) + 1) / 2
        css = (torch.stack(css, -1) + 1) / 2
        ms = torch.prod(css[..., :-1] ** weights[:-1] * sims[..., -1:] ** weights[-1], dim=-1)
        return (1 - ms).mean() + pixel(o, t)

    return {"ssim": ssim_loss, "msssim": msssim_loss}[kind]


class TorchSide:
    """The PyTorch reference network with the benchmark's weights, in both memory formats."""

    def __init__(self, params, threads: int, *, state_dict=None, shared: bool | None = None):
        """From jaxfuse ``params``, or (``params`` None) from a PyTorch ``state_dict`` and ``shared``."""
        import torch

        from jaxfuse import model, torch_io
        from jaxfuse.bench import torch_baseline as tr
        self.torch, self.tr = torch, tr
        torch.set_num_threads(threads)
        if params is not None:
            shared = model.config_from_params(params).shared
            state_dict = {k: torch.from_numpy(np.array(v))
                          for k, v in torch_io.state_dict_from_params(params).items()}
        self.shared, self.state_dict = shared, state_dict
        self.formats = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}

    def net(self, fmt: str, train: bool = False):
        net = self.tr.TorchRes2NetFuse(shared=self.shared)
        net.load_state_dict(self.state_dict)
        net = net.train(train).to(memory_format=self.formats[fmt])
        return net

    def tensor(self, a: np.ndarray, fmt: str):
        """(H, W) or (1, H, W, 1) NumPy → (1, 1, H, W) tensor in ``fmt``."""
        a = np.asarray(a, np.float32)
        a = a.reshape(a.shape[-3:-1] if a.ndim == 4 else a.shape)
        return self.torch.from_numpy(a.copy())[None, None].contiguous(memory_format=self.formats[fmt])

    def fuse_fn(self, fmt: str, ir: np.ndarray, vis: np.ndarray):
        torch, tr = self.torch, self.tr
        net = self.net(fmt)
        x1, x2 = self.tensor(ir, fmt), self.tensor(vis, fmt)

        def run():
            with torch.inference_mode():
                return tr.to_uint8(net.fuse(x1, x2, "l1"))
        return run

    def train_fn(self, fmt: str, image: np.ndarray, kind: str, lr: float):
        torch = self.torch
        net = self.net(fmt, train=True)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        x = self.tensor(image, fmt)
        loss_fn = torch_loss(kind)
        losses = []

        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), x)
            loss.backward()
            opt.step()
            if not losses:
                losses.append(float(loss.detach()))
            return loss
        return step, losses

    def matmul_fn(self, n: int):
        torch = self.torch
        g = torch.Generator().manual_seed(0)
        a = torch.randn(n, n, generator=g)
        b = torch.randn(n, n, generator=g)
        return lambda: torch.mm(a, b)
