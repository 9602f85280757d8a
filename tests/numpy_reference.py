"""An independent NumPy version of the Res2NetFuse forward pass and strategies.

Written from SPEC.md, not from jaxfuse's code: plain loops over the 3×3 taps
in float64, explicit zero padding. Used to check jaxfuse's forward pass.
"""

import numpy as np


def conv(x, kernel, bias):
    """'same' zero-padded stride-1 conv; x (H, W, Cin), kernel HWIO."""
    kh, kw = kernel.shape[:2]
    ph, pw = kh // 2, kw // 2
    xp = np.pad(x, ((ph, ph), (pw, pw), (0, 0)))
    h, w = x.shape[:2]
    out = np.zeros((h, w, kernel.shape[-1]))
    for i in range(kh):
        for j in range(kw):
            out += xp[i:i + h, j:j + w, :] @ kernel[i, j]
    return out + bias


def relu(x):
    return np.maximum(x, 0)


def _c(p, x):
    return conv(x, np.asarray(p["kernel"], np.float64), np.asarray(p["bias"], np.float64))


def encode(params, x):
    e = params["encoder"]
    c = relu(_c(e["conv1"], relu(_c(e["conv0"], x))))
    r = e["res2net"]
    h = relu(_c(r["conv_in"], c))
    xs = [h[..., 16 * g:16 * (g + 1)] for g in range(4)]
    ys = [xs[0]]
    for g in range(1, 4):
        if "conv3" in r:
            first = second = r["conv3"]
        else:
            first, second = r[f"conv3_g{g - 1}_0"], r[f"conv3_g{g - 1}_1"]
        z = xs[g] if g == 1 else xs[g] + ys[-1]
        ys.append(relu(_c(second, relu(_c(first, z)))))
    return c + relu(_c(r["conv_out"], np.concatenate(ys, axis=-1)))


def decode(params, f):
    d = params["decoder"]
    for i in range(3):
        f = relu(_c(d[f"conv{i}"], f))
    return _c(d["conv3"], f)


def l1(feats):
    a = np.abs(feats).sum(-1, keepdims=True)
    s = a.sum(0)
    w = np.where(s == 0, 1.0 / len(feats), a / np.where(s == 0, 1, s))
    return (w * feats).sum(0)


def mean_softmax(feats):
    m = feats.mean(-1, keepdims=True)
    m = (m - m.min(axis=(1, 2), keepdims=True)) / (
        m.max(axis=(1, 2), keepdims=True) - m.min(axis=(1, 2), keepdims=True) + 1e-5)
    e = np.exp(m)
    return (e / (e.sum(0) + 1e-5) * feats).sum(0)


def conv_reflect(x, kernel, bias):
    """Like :func:`conv` with reflection padding (PyTorch ReflectionPad2d)."""
    r = kernel.shape[0] // 2
    xp = np.pad(x, ((r, r), (r, r), (0, 0)), mode="reflect")
    h, w = x.shape[:2]
    out = np.zeros((h, w, kernel.shape[-1]))
    for i in range(kernel.shape[0]):
        for j in range(kernel.shape[1]):
            out += xp[i:i + h, j:j + w, :] @ kernel[i, j]
    return out + bias


def _cr(p, v):
    return conv_reflect(v, np.asarray(p["kernel"], np.float64), np.asarray(p["bias"], np.float64))


def _dense_encode(e, x):
    f = relu(_cr(e["conv0"], x))
    for i in range(3):
        f = np.concatenate([f, relu(_cr(e[f"dense{i}"], f))], axis=-1)
    return f


def msdnet_encode(params, x):
    e = params["encoder"]
    f = _dense_encode(e["dense"], x)
    return np.concatenate([relu(_cr(e[f"scale{k}"], f)) for k in (1, 3, 5)], axis=-1)


def reflect_decode(params, f):
    d = params["decoder"]
    for i in range(3):
        f = relu(_cr(d[f"conv{i}"], f))
    return _cr(d["conv3"], f)


def densefuse_reconstruct(params, x):
    e, d = params["encoder"], params["decoder"]
    c = _cr
    f = _dense_encode(e, x)
    for i in range(3):
        f = relu(c(d[f"conv{i}"], f))
    return f, c(d["conv3"], f)


def l1_block(feats, r=1):
    a = np.abs(feats).sum(-1)
    k, h, w = a.shape
    ap = np.pad(a, ((0, 0), (r, r), (r, r)))
    blk = sum(ap[:, i:i + h, j:j + w] for i in range(2 * r + 1) for j in range(2 * r + 1)) / (2 * r + 1) ** 2
    s = blk.sum(0)
    wts = np.where(s == 0, 1.0 / k, blk / np.where(s == 0, 1, s))[..., None]
    return (wts * feats).sum(0)
