"""Performance benchmark: jaxfuse against the PyTorch Res2NetFuse, one run, one machine.

    python -m jaxfuse.bench                  # full run (several minutes on 2 cores)
    python -m jaxfuse.bench --quick          # fewer repeats, smaller sizes (about 2 minutes)
    python -m jaxfuse.bench --no-torch       # JAX figures only
    python -m jaxfuse.bench --json out.json  # also write every figure as JSON

What it measures, each figure for JAX and (when ``torch`` is installed) for
the independent PyTorch network of ``tests/torch_reference.py`` with the same
weights, CPU, fp32, ``torch.set_num_threads(cores)``:

* fusion of one 480×640 pair: median steady-state time of the user path
  (:func:`jaxfuse.fusion.fuse_pair`, NumPy in, uint8 out) and of the network
  alone; compilation reported separately (first call minus steady state, and
  ``.lower()`` / ``.compile()`` timed on cleared caches). PyTorch in NCHW and
  in channels-last memory format (network + the same uint8 output step);
* the TNO-21 folder as a whole process, start-up and compiles included:
  ``fuse.py --pairs ../shared/data/tno21 --out TMP --no-progress`` against a
  small PyTorch fuse script (PIL in, PNG out) in both memory formats;
* a training step at 256×256 (batch 1, Adam 5e-4) for both losses: the SSIM
  loss (jaxfuse's default; PyTorch: an 11-tap σ 1.5 separable Gaussian SSIM
  on the 0–1 scale, as dm-pix computes it, + the 0–1 MSE) and the authors'
  MS-SSIM (SPEC; PyTorch: the same formula, separable Gaussian), and the
  2000-step projection;
* GFLOP/s from analytic convolution FLOPs (2·H·W·Cin·Cout·k² per layer, the
  shared 3×3 conv of the Res2Net block counted at each of its 6 uses;
  XLA's ``cost_analysis`` printed beside it) and the fraction of a float32
  matmul peak measured here (median of a 2048³ ``jnp.dot``);
* peak resident memory of each subprocess (its own VmHWM high-water mark),
  including one 4000×3000 pair fused by tiles (``auto_fuse`` → ``tiled_fuse``)
  in a fresh process.

Steady-state timings of JAX and PyTorch are interleaved call by call, so a
busy machine slows both alike and the ratios stay meaningful; absolute times
are only as good as the machine is idle (the load average is printed). The
whole-process runs also report CPU time (user + system), which other load
disturbs far less than wall time. Finally the issue's targets are checked
(MET / MISSED) and a markdown block for the README is printed.

``--quick`` (about 2 minutes on an idle 2-core machine, more when it is busy):
a 240×320 pair instead of 480×640, 3 repeats, PyTorch channels-last only
where no target needs NCHW, the 4 smallest TNO pairs, one 768×512 pair by
256-pixel tiles; its verdicts are marked as quick. XLA options can be tried
through the environment, e.g. ``XLA_FLAGS=... python -m jaxfuse.bench``; the
subprocesses inherit it and the flags are printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TESTS_DIR = REPO / "tests"
DEFAULT_TNO = REPO.parent / "shared" / "data" / "tno21"
PAIR_HW = (480, 640)
TRAIN_SIZE = 256
TRAIN_STEPS = 2000
GB = 1e9

# (kernel, Cin, Cout, uses per forward pass); the shared Res2Net 3×3 conv is
# applied twice in each of the three groups (with shared=False: six convs, one
# use each, the same count).
ENCODER_LAYERS = [(3, 1, 32, 1), (3, 32, 64, 1), (1, 64, 64, 1), (3, 16, 16, 6), (1, 64, 64, 1)]
DECODER_LAYERS = [(3, 64, 64, 1), (3, 64, 32, 1), (3, 32, 16, 1), (3, 16, 1, 1)]


def _flops_per_pixel(layers) -> int:
    return sum(2 * k * k * cin * cout * uses for k, cin, cout, uses in layers)


ENC_FPP = _flops_per_pixel(ENCODER_LAYERS)   # 81,472
DEC_FPP = _flops_per_pixel(DECODER_LAYERS)   # 120,096
FIRST_LAYER_FPP = _flops_per_pixel(ENCODER_LAYERS[:1])
BIG_LAYER_SHARE = _flops_per_pixel(DECODER_LAYERS[:1]) / (2 * ENC_FPP + DEC_FPP)


def fusion_flops(h: int, w: int, k: int = 2) -> float:
    """k encoders + one decoder (the fusion strategy itself is negligible)."""
    return float((k * ENC_FPP + DEC_FPP) * h * w)


def train_flops(h: int, w: int) -> float:
    """Forward + weight gradients + input gradients (none for the first layer)."""
    fwd = (ENC_FPP + DEC_FPP) * h * w
    return float(3 * fwd - FIRST_LAYER_FPP * h * w)


# ----------------------------------------------------------------------------- helpers

def _med(xs):
    return float(statistics.median(xs))


def _fmt_s(t):
    return "n/a" if t is None else (f"{t * 1e3:.0f} ms" if t < 10 else f"{t:.1f} s")


def _fmt_ms(t):
    return "n/a" if t is None else f"{t * 1e3:.1f} ms"


def _fmt_mb(b):
    return "n/a" if b is None else f"{b / 2**20:.0f} MiB"


def _spread(xs):
    return f"median {_fmt_ms(_med(xs))} (min {_fmt_ms(min(xs))}, max {_fmt_ms(max(xs))}, n={len(xs)})"


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def interleaved(fns: dict, reps: int, warmup: int = 1) -> dict:
    """Times each callable ``reps`` times, round-robin, after ``warmup`` untimed calls."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            times[name].append(_timed(fn)[0])
    return times


# Runs a Python script as __main__ and, at exit, writes the process's peak resident
# set to a file. The peak is read from /proc/self/status VmHWM (the high-water mark
# of this process's own memory map): ``ru_maxrss`` of a child is useless here, since
# Linux carries the parent's resident size at fork into the child's maxrss.
LAUNCHER = r'''
import atexit, os, runpy, sys
def peak_rss():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
out, script = sys.argv[1], sys.argv[2]
def report():
    with open(out, "w") as f:
        f.write(str(peak_rss()))
atexit.register(report)
sys.argv = sys.argv[2:]
sys.path[0] = os.path.dirname(os.path.abspath(script))
runpy.run_path(script, run_name="__main__")
'''


def run_script(script, args, *, tmp: Path, cwd=REPO, env=None, timeout=1800):
    """Runs ``python script args...`` under :data:`LAUNCHER`.

    Returns ``(wall_s, returncode, peak_rss_bytes or None, cpu_s, stdout, stderr)``;
    ``cpu_s`` is the child's user + system CPU time (``os.wait4``), a figure a busy
    machine disturbs much less than the wall time.
    """
    launcher = tmp / "_launcher.py"
    if not launcher.exists():
        launcher.write_text(LAUNCHER)
    rss_file = Path(tempfile.mktemp(prefix="rss-", dir=tmp))
    cmd = [sys.executable, str(launcher), str(rss_file), str(script)] + [str(a) for a in args]
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fo, stderr=fe)
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        cpu = ru.ru_utime + ru.ru_stime
        fo.seek(0)
        fe.seek(0)
        try:
            rss = int(rss_file.read_text())
        except (OSError, ValueError):
            rss = None
        return wall, p.returncode, rss, cpu, fo.read().decode(errors="replace"), \
            fe.read().decode(errors="replace")


def _child_env():
    env = dict(os.environ)
    env.setdefault("PYTHONWARNINGS", "ignore")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")
                                if f in flags)
    except OSError:
        pass
    return "?"


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def section(title):
    print(f"\n== {title} " + "=" * max(0, 72 - len(title)), flush=True)


# ----------------------------------------------------------------------------- inputs

def _tno_pairs(tno: Path):
    ir_dir, vis_dir = tno / "ir", tno / "vis"
    if not (ir_dir.is_dir() and vis_dir.is_dir()):
        return []
    names = sorted(p.name for p in ir_dir.iterdir() if p.suffix.lower() == ".png")
    return [(ir_dir / n, vis_dir / n) for n in names if (vis_dir / n).is_file()]


def _load_gray(path) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(path).convert("L"), np.float32)


def _synthetic_pair(h, w, seed=0):
    """Smooth random 0–255 images (bicubic upsampling of coarse noise)."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(2):
        small = rng.uniform(0, 255, (max(2, h // 16), max(2, w // 16))).astype(np.float32)
        img = Image.fromarray(small, mode="F").resize((w, h), Image.BICUBIC)
        out.append(np.clip(np.asarray(img, np.float32), 0, 255))
    return out[0], out[1]


def bench_pair(tno: Path, hw=PAIR_HW):
    """The TNO pair that is 640×480 (resized to ``hw`` if that differs), else a synthetic one."""
    from PIL import Image
    for ir, vis in _tno_pairs(tno):
        if Image.open(ir).size == (PAIR_HW[1], PAIR_HW[0]):
            if tuple(hw) == PAIR_HW:
                return _load_gray(ir), _load_gray(vis), f"TNO pair {ir.name}"
            resize = lambda p: np.asarray(Image.open(p).convert("L").resize(  # noqa: E731
                (hw[1], hw[0]), Image.BILINEAR), np.float32)
            return resize(ir), resize(vis), f"TNO pair {ir.name} resized to {hw[0]}×{hw[1]}"
    a, b = _synthetic_pair(*hw)
    return a, b, "synthetic smooth noise"


# ----------------------------------------------------------------------------- child scripts

TORCH_FUSE_SCRIPT = r'''
"""PyTorch fuse script used by jaxfuse.bench: fuses every ir/vis PNG pair of a folder."""
import os, sys, time
import numpy as np
import torch
from PIL import Image
pairs, out, weights, fmt, threads, tests_dir, shared = sys.argv[1:8]
sys.path.insert(0, tests_dir)
from torch_reference import TorchRes2NetFuse, to_uint8
torch.set_num_threads(int(threads))
mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
net = TorchRes2NetFuse(shared=shared == "1")
net.load_state_dict(torch.load(weights, weights_only=True, map_location="cpu"))
net = net.eval().to(memory_format=mf)
os.makedirs(out, exist_ok=True)
n = 0
with torch.inference_mode():
    for name in sorted(os.listdir(os.path.join(pairs, "ir"))):
        if not name.lower().endswith(".png"):
            continue
        ir = np.asarray(Image.open(os.path.join(pairs, "ir", name)).convert("L"), np.float32)
        vis = np.asarray(Image.open(os.path.join(pairs, "vis", name)).convert("L"), np.float32)
        x1 = torch.from_numpy(ir)[None, None].contiguous(memory_format=mf)
        x2 = torch.from_numpy(vis)[None, None].contiguous(memory_format=mf)
        fused = to_uint8(net.fuse(x1, x2, "l1"))[0, 0].numpy()
        Image.fromarray(fused).save(os.path.join(out, name))
        n += 1
print(f"fused {n} pair(s)")
'''

TILED_SCRIPT = r'''
"""Fuses one large pair by tiles in a fresh process; prints JSON (time, RSS)."""
import json, resource, sys, time
import numpy as np
ckpt, h, w, engine, src = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
tile = int(sys.argv[6])
from jaxfuse import checkpoint, engine as eng
from jaxfuse.fusion import fuse_pair
from PIL import Image
params, _ = checkpoint.load_params(ckpt)
def load(path, seed):
    if path != "-":
        img = Image.open(path).convert("L").resize((w, h), Image.BICUBIC)
        return np.asarray(img, np.float32)
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (h // 16, w // 16)).astype(np.float32)
    return np.clip(np.asarray(Image.fromarray(small, mode="F").resize((w, h), Image.BICUBIC)), 0, 255)
ir_path, vis_path = src.split("|") if src != "-" else ("-", "-")
ir, vis = load(ir_path, 0), load(vis_path, 1)
def vmhwm():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
rss0 = vmhwm()
fn = (lambda p, s, **kw: eng.tiled_fuse(p, s, tile=tile, **kw)) if engine == "tiled_fuse" else eng.auto_fuse
t0 = time.perf_counter()
out = fuse_pair(params, ir, vis, fuse_fn=fn)
t = time.perf_counter() - t0
rss1 = vmhwm()
print(json.dumps({"seconds": t, "rss_before": rss0, "rss_peak": rss1, "shape": list(out.shape)}))
'''


# ----------------------------------------------------------------------------- PyTorch side

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

    def __init__(self, params, threads: int):
        import torch
        sys.path.insert(0, str(TESTS_DIR))
        try:
            import torch_reference as tr
        finally:
            sys.path.remove(str(TESTS_DIR))
        from jaxfuse import model, torch_io
        self.torch, self.tr = torch, tr
        torch.set_num_threads(threads)
        self.shared = model.config_from_params(params).shared
        self.state_dict = {k: torch.from_numpy(np.array(v))
                           for k, v in torch_io.state_dict_from_params(params).items()}
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


# ----------------------------------------------------------------------------- the benchmark

class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.R: dict = {"mode": "quick" if args.quick else "full", "jax": {}, "torch": {}, "ratios": {},
                        "targets": {}}
        self.cores = _cores()
        self.tmp = Path(tempfile.mkdtemp(prefix="jaxfuse-bench-"))
        self.tno = Path(args.tno) if args.tno else DEFAULT_TNO
        self.use_torch = not args.no_torch and torch_available()
        self.torch_skip_reason = ("--no-torch" if args.no_torch else
                                  "torch not installed" if not torch_available() else None)
        q = self.quick
        self.pair_hw = (240, 320) if q else PAIR_HW
        # Quick mode compares against channels-last only where no target needs NCHW.
        self.fmts = ("channels_last",) if q else ("nchw", "channels_last")
        self.reps_pair = 3 if q else 9
        self.reps_train = {"ssim": 3 if q else 15, "msssim": 2 if q else 7}
        self.reps_mm = 5 if q else 9
        self.tno_pairs = 4 if q else None  # quick: the 4 smallest pairs
        self.tno_rounds = 1 if q else 2
        self.large = (512, 768, "tiled_fuse", 256) if q else (3000, 4000, "auto_fuse", 512)

    # -- environment ---------------------------------------------------------
    def environment(self):
        import jax
        import jaxlib
        section("Machine and software")
        dev = jax.devices()[0]
        env = {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu": _cpu_model(),
            "cpu_flags": _cpu_flags(),
            "cores_usable": self.cores,
            "cpu_count": os.cpu_count(),
            "loadavg_start": list(os.getloadavg()),
            "jax": jax.__version__,
            "jaxlib": jaxlib.__version__,
            "jax_backend": jax.default_backend(),
            "jax_devices": [str(d) for d in jax.devices()],
            "device_kind": dev.device_kind,
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
        }
        for mod in ("flax", "optax", "numpy"):
            try:
                env[mod] = __import__(mod).__version__
            except Exception:  # noqa: BLE001
                pass
        print(f"device/backend : JAX {env['jax_backend']} ({', '.join(env['jax_devices'])}; "
              f"kind {env['device_kind']})")
        print(f"CPU            : {env['cpu']} [{env['cpu_flags']}], {self.cores} usable core(s) "
              f"of {env['cpu_count']}")
        print(f"versions       : python {env['python']}, jax {env['jax']}, jaxlib {env['jaxlib']}, "
              f"flax {env.get('flax')}, optax {env.get('optax')}, numpy {env.get('numpy')}")
        print(f"XLA threads    : XLA's CPU thread pool over all {self.cores} usable cores "
              f"(XLA_FLAGS={env['xla_flags'] or '<unset>'})")
        if self.use_torch:
            import torch
            torch.set_num_threads(self.cores)
            env["torch"] = torch.__version__
            env["torch_threads"] = torch.get_num_threads()
            env["torch_interop_threads"] = torch.get_num_interop_threads()
            env["torch_mkldnn"] = bool(torch.backends.mkldnn.is_available())
            print(f"PyTorch        : {env['torch']}, CPU fp32, set_num_threads({self.cores}) → "
                  f"{env['torch_threads']} intra-op thread(s), {env['torch_interop_threads']} inter-op, "
                  f"oneDNN {'on' if env['torch_mkldnn'] else 'off'}")
        else:
            print(f"PyTorch        : PyTorch baseline skipped: {self.torch_skip_reason}")
        la = env["loadavg_start"]
        print(f"load average   : {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} (1/5/15 min)"
              + ("  <- busy machine: absolute times are inflated; JAX and PyTorch are interleaved"
                 " so the ratios hold better" if la[0] > 0.5 * self.cores else ""))
        print(f"mode           : {'quick (fewer repeats, smaller sizes)' if self.quick else 'full'}")
        self.R["env"] = env

    # -- model ---------------------------------------------------------------
    def setup_model(self):
        """Parameters: the shipped checkpoint, else fresh ones saved to a temp Orbax checkpoint."""
        import jax
        from jaxfuse import checkpoint, model, pipeline
        section("Model")
        shipped = pipeline.DEFAULT_CHECKPOINT
        if shipped.exists():
            self.params, _ = checkpoint.load_params(shipped)
            self.ckpt, self.ckpt_arg = shipped, []
            what = f"shipped checkpoint {shipped.relative_to(REPO)}"
        else:
            self.params = model.init_params(jax.random.key(0))
            self.ckpt = self.tmp / "ckpt"
            mngr = checkpoint.manager(self.ckpt)
            checkpoint.save(mngr, 0, self.params,
                            checkpoint.make_meta(model.config_from_params(self.params), 0))
            self.ckpt_arg = ["--checkpoint", str(self.ckpt)]
            what = "no shipped checkpoint: fresh init_params(key(0)) saved to a temp Orbax checkpoint"
        cfg = model.config_from_params(self.params)
        print(f"weights        : {what}")
        print(f"network        : Res2NetFuse shared={cfg.shared}, {model.count_params(self.params):,} "
              f"parameters; analytic conv FLOPs per pixel: encoder {ENC_FPP:,}, decoder {DEC_FPP:,}")
        print(f"FLOPs          : fusion of a 480×640 pair {fusion_flops(*PAIR_HW) / 1e9:.1f} GFLOP "
              f"(2 encoders + 1 decoder); train step 256×256 {train_flops(256, 256) / 1e9:.1f} GFLOP "
              f"(forward + weight and input gradients)")
        self.R["model"] = {"weights": what, "shared": cfg.shared,
                           "parameters": model.count_params(self.params),
                           "fusion_gflop_480x640": fusion_flops(*PAIR_HW) / 1e9,
                           "train_gflop_256": train_flops(256, 256) / 1e9}
        if self.use_torch:
            self.T = TorchSide(self.params, self.cores)

    # -- matmul peak ---------------------------------------------------------
    def matmul_peak(self):
        import jax
        import jax.numpy as jnp
        section("Matmul peak (float32, 2048³)")
        n = 2048
        ka, kb = jax.random.split(jax.random.key(0))
        a = jax.random.normal(ka, (n, n), jnp.float32)
        b = jax.random.normal(kb, (n, n), jnp.float32)
        dot = jax.jit(jnp.dot)
        fns = {"jax": lambda: dot(a, b).block_until_ready()}
        if self.use_torch:
            fns["torch"] = self.T.matmul_fn(n)
        t = interleaved(fns, self.reps_mm, warmup=2)
        flops = 2.0 * n ** 3
        self.peak = flops / _med(t["jax"]) / 1e9
        print(f"jnp.dot        : {_spread(t['jax'])} → {self.peak:.0f} GFLOP/s (the peak used below)")
        self.R["jax"]["matmul_2048_s"] = _med(t["jax"])
        self.R["jax"]["matmul_peak_gflops"] = self.peak
        if self.use_torch:
            tp = flops / _med(t["torch"]) / 1e9
            print(f"torch.mm       : {_spread(t['torch'])} → {tp:.0f} GFLOP/s")
            self.R["torch"]["matmul_peak_gflops"] = tp

    # -- fusion of one pair --------------------------------------------------
    def fusion_pair(self):
        import jax
        import jax.numpy as jnp
        from jaxfuse import fusion
        h, w = self.pair_hw
        section(f"Fusion of one {h}×{w} pair (l1)" + ("  [quick: not the 480×640 of the target]"
                                                     if self.pair_hw != PAIR_HW else ""))
        ir, vis, src = bench_pair(self.tno, self.pair_hw)
        params = self.params
        sources = np.stack([ir, vis])[:, None, :, :, None]
        from jaxfuse.engine import bucket_shape
        bh, bw = bucket_shape(h, w)
        print(f"input          : {src}"
              + (f"; auto_fuse pads it to its {bh}×{bw} shape bucket (masked, exact)" if (bh, bw) != (h, w) else ""))

        # Compilation: the user path's first call on cleared caches, minus steady state;
        # then trace+lower and XLA compile of the network alone, also on cleared caches.
        jax.clear_caches()
        t_first, _ = _timed(lambda: fusion.fuse_pair(params, ir, vis))
        jax.clear_caches()
        src_dev = jnp.asarray(sources)
        t_lower, lowered = _timed(lambda: fusion.fuse.lower(params, src_dev, strategy="l1"))
        t_compile, compiled = _timed(lambda: lowered.compile())
        ca = compiled.cost_analysis()
        ca = ca[0] if isinstance(ca, (list, tuple)) else ca
        xla_flops = float(ca.get("flops", float("nan"))) if ca else float("nan")

        fns = {
            "jax_fuse_pair": lambda: fusion.fuse_pair(params, ir, vis),
            "jax_network": lambda: fusion.fuse(params, src_dev, strategy="l1").block_until_ready(),
        }
        if self.use_torch:
            for fmt in self.fmts:
                fns[f"torch_{fmt}"] = self.T.fuse_fn(fmt, ir, vis)
        t = interleaved(fns, self.reps_pair, warmup=1)
        med = {k: _med(v) for k, v in t.items()}
        flops = fusion_flops(h, w)

        out_jax = fusion.fuse_pair(params, ir, vis)
        J = self.R["jax"]
        J.update({"pair_hw": [h, w], "pair_first_call_s": t_first, "pair_steady_s": med["jax_fuse_pair"],
                  "pair_network_s": med["jax_network"],
                  "pair_compile_est_s": t_first - med["jax_fuse_pair"],
                  "pair_trace_lower_s": t_lower, "pair_xla_compile_s": t_compile,
                  "pair_gflops": flops / med["jax_fuse_pair"] / 1e9,
                  "pair_network_gflops": flops / med["jax_network"] / 1e9,
                  "pair_xla_cost_analysis_gflop": xla_flops / 1e9,
                  "pair_times_s": t["jax_fuse_pair"], "pair_network_times_s": t["jax_network"]})
        print(f"JAX fuse_pair  : {_spread(t['jax_fuse_pair'])}  [user path: NumPy in, auto_fuse, uint8 out]")
        print(f"JAX network    : {_spread(t['jax_network'])}  [jitted fuse() on a {h}×{w} device array, "
              f"no padding]")
        print(f"JAX compile    : first call {_fmt_s(t_first)} − steady = {_fmt_s(J['pair_compile_est_s'])}; "
              f"on cleared caches: trace+lower {_fmt_s(t_lower)}, XLA compile {_fmt_s(t_compile)}")
        print(f"JAX GFLOP/s    : {J['pair_gflops']:.0f} (user path), {J['pair_network_gflops']:.0f} "
              f"(network) = {J['pair_network_gflops'] / self.peak:.0%} of the matmul peak; "
              f"analytic {flops / 1e9:.1f} GFLOP, XLA cost_analysis {xla_flops / 1e9:.1f} GFLOP")
        if self.use_torch:
            P = self.R["torch"]
            for fmt in self.fmts:
                m = med[f"torch_{fmt}"]
                P[f"pair_{fmt}_s"] = m
                P[f"pair_{fmt}_gflops"] = flops / m / 1e9
                P[f"pair_{fmt}_times_s"] = t[f"torch_{fmt}"]
                print(f"PyTorch {fmt:<13}: {_spread(t[f'torch_{fmt}'])} → {flops / m / 1e9:.0f} GFLOP/s "
                      f"({flops / m / 1e9 / self.peak:.0%} of the JAX-measured matmul peak)")
            ref = self.T.fuse_fn("channels_last", ir, vis)()[0, 0].numpy()
            diff = np.abs(ref.astype(int) - out_jax.astype(int))
            P["pair_output_max_abs_diff"] = int(diff.max())
            P["pair_output_frac_diff_gt1"] = float(np.mean(diff > 1))
            print(f"agreement      : uint8 outputs JAX vs PyTorch: max |diff| {diff.max()}, "
                  f"{np.mean(diff > 1):.3%} of pixels differ by more than 1")
            parts = []
            for fmt in self.fmts:
                r = med[f"torch_{fmt}"] / med["jax_fuse_pair"]
                rb = min(t[f"torch_{fmt}"]) / min(t["jax_fuse_pair"])
                self.R["ratios"][f"pair_speedup_vs_{fmt}"] = r
                self.R["ratios"][f"pair_speedup_vs_{fmt}_best"] = rb
                parts.append(f"{r:.2f}× PyTorch {fmt.replace('_', '-')} (best runs {rb:.2f}×)")
            print(f"speed-up       : JAX fuse_pair is {', '.join(parts)} (PyTorch time / JAX time, "
                  f"medians; best runs = ratio of the minima)")
        else:
            print(f"PyTorch        : PyTorch baseline skipped: {self.torch_skip_reason}")

    # -- training ------------------------------------------------------------
    def training(self):
        import jax
        from jaxfuse import training
        section(f"Training step {TRAIN_SIZE}×{TRAIN_SIZE} (batch 1, Adam 5e-4)")
        image = training.load_training_image(None, TRAIN_SIZE)
        flops = train_flops(TRAIN_SIZE, TRAIN_SIZE)
        for kind in ("ssim", "msssim"):
            cfg = training.TrainConfig(loss=kind, size=TRAIN_SIZE)
            # Start from the benchmark's weights so JAX and PyTorch train the same network
            # (copies: the step donates its state).
            params = jax.tree_util.tree_map(lambda x: x + 0, self.params)
            holder = {"state": {"params": params, "opt": training.make_optimizer(cfg.lr).init(params),
                                "step": jax.numpy.zeros((), jax.numpy.int32)}}
            img = jax.device_put(image)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*donated buffers were not usable.*")
                step = training.make_train_step(cfg)
                # Compile once, timed (the steady-state calls below use this executable).
                t_lower, lowered = _timed(lambda: step.lower(holder["state"], img))
                t_compile, compiled = _timed(lambda: lowered.compile())
                ca = compiled.cost_analysis()
                ca = ca[0] if isinstance(ca, (list, tuple)) else ca
                xla_flops = float(ca.get("flops", float("nan"))) if ca else float("nan")
                first_loss = []

                def jstep():
                    holder["state"], terms = compiled(holder["state"], img)
                    total = float(terms["total"])  # what the training loop does each step
                    if not first_loss:
                        first_loss.append(total)

                fns = {"jax": jstep}
                tl = {}
                if self.use_torch:
                    for fmt in self.fmts:
                        fns[f"torch_{fmt}"], tl[fmt] = self.T.train_fn(fmt, image, kind, cfg.lr)
                t = interleaved(fns, self.reps_train[kind], warmup=1)
            med = {k: _med(v) for k, v in t.items()}
            J = self.R["jax"]
            compile_s = t_lower + t_compile
            J[f"train_{kind}_s"] = med["jax"]
            J[f"train_{kind}_compile_s"] = compile_s
            J[f"train_{kind}_trace_lower_s"] = t_lower
            J[f"train_{kind}_xla_compile_s"] = t_compile
            J[f"train_{kind}_gflops"] = flops / med["jax"] / 1e9
            J[f"train_{kind}_xla_cost_analysis_gflop"] = xla_flops / 1e9
            J[f"train_{kind}_2000_steps_s"] = TRAIN_STEPS * med["jax"] + compile_s
            J[f"train_{kind}_times_s"] = t["jax"]
            label = "SSIM loss (jaxfuse default)" if kind == "ssim" else "MS-SSIM loss (authors')"
            print(f"-- {label}")
            print(f"JAX            : {_spread(t['jax'])} → {J[f'train_{kind}_gflops']:.0f} GFLOP/s "
                  f"({J[f'train_{kind}_gflops'] / self.peak:.0%} of matmul peak; analytic "
                  f"{flops / 1e9:.1f} GFLOP, XLA cost_analysis {xla_flops / 1e9:.1f} GFLOP)")
            print(f"JAX compile    : trace+lower {_fmt_s(t_lower)} + XLA compile {_fmt_s(t_compile)} "
                  f"= {_fmt_s(compile_s)}")
            print(f"JAX 2000 steps : {_fmt_s(J[f'train_{kind}_2000_steps_s'])} projected "
                  f"(2000 × median step + compile; checkpoints and plots not included)")
            if self.use_torch:
                P = self.R["torch"]
                for fmt in self.fmts:
                    m = med[f"torch_{fmt}"]
                    P[f"train_{kind}_{fmt}_s"] = m
                    P[f"train_{kind}_{fmt}_2000_steps_s"] = TRAIN_STEPS * m
                    P[f"train_{kind}_{fmt}_times_s"] = t[f"torch_{fmt}"]
                    print(f"PyTorch {fmt:<13}: {_spread(t[f'torch_{fmt}'])} → {flops / m / 1e9:.0f} GFLOP/s; "
                          f"2000 steps {_fmt_s(TRAIN_STEPS * m)}")
                P[f"train_{kind}_first_loss"] = tl["channels_last"][0]
                J[f"train_{kind}_first_loss"] = first_loss[0]
                print(f"loss check     : first-step loss JAX {first_loss[0]:.6g}, PyTorch "
                      f"{tl['channels_last'][0]:.6g} (same weights, same image)")
                parts = []
                for fmt in self.fmts:
                    r = med["jax"] / med[f"torch_{fmt}"]
                    rb = min(t["jax"]) / min(t[f"torch_{fmt}"])
                    self.R["ratios"][f"train_{kind}_vs_{fmt}"] = r
                    self.R["ratios"][f"train_{kind}_vs_{fmt}_best"] = rb
                    parts.append(f"/ PyTorch {fmt.replace('_', '-')} = {r:.2f} (best runs {rb:.2f})")
                print(f"ratio          : JAX {', '.join(parts)}")
        if self.use_torch:
            print("PyTorch losses : SSIM = 11-tap σ 1.5 separable Gaussian SSIM on the 0–1 scale "
                  "(dm-pix's definition) + 0–1 MSE; MS-SSIM = the authors' formula (SPEC), separable "
                  "Gaussian, + 0–1 MSE; Adam lr 5e-4; NCHW or channels-last network and input")
        else:
            print(f"PyTorch        : PyTorch baseline skipped: {self.torch_skip_reason}")

    # -- where the time goes: one convolution in both frameworks ---------------
    def kernels(self):
        """The network's heaviest layer (3×3, 64→64, the decoder's first) alone, both frameworks.

        Forward at the fusion size, and the three convolutions of a training step at
        256×256 (forward, gradient w.r.t. the input, gradient w.r.t. the weights). The
        layer is 26 % of a fusion's FLOPs (:data:`BIG_LAYER_SHARE`); these ratios are the
        measured cause of the fusion and training verdicts below.
        """
        import jax
        import jax.numpy as jnp
        from jax import lax
        section("One convolution, both frameworks (3×3, 64→64: the decoder's first layer)")
        if not self.use_torch:
            print(f"skipped: needs the PyTorch baseline ({self.torch_skip_reason})")
            return
        torch = self.T.torch
        rng = np.random.default_rng(0)
        w = rng.normal(0, 0.05, (3, 3, 64, 64)).astype(np.float32)  # HWIO, as Flax
        dn = ("NHWC", "HWIO", "NHWC")
        conv = lambda x, k: lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=dn)  # noqa: E731
        from jaxfuse import xla
        fwd = xla.jit(conv)
        dx = xla.jit(lambda x, k, g: jax.vjp(lambda x_: conv(x_, k), x)[1](g)[0])
        dw = xla.jit(lambda x, k, g: jax.vjp(lambda k_: conv(x, k_), k)[1](g)[0])
        tw = torch.from_numpy(w.transpose(3, 2, 0, 1).copy())  # OIHW
        K = self.R["kernels"] = {}
        cases = [("forward", self.pair_hw)] + [(c, (TRAIN_SIZE, TRAIN_SIZE)) for c in ("input_grad", "weight_grad")]
        cases.insert(1, ("forward_train", (TRAIN_SIZE, TRAIN_SIZE)))
        print(f"{'case':<26}{'JAX':>22}{'PyTorch channels-last':>26}{'JAX / PyTorch':>15}")
        for case, (h, wd) in cases:
            x = rng.normal(0, 1, (1, h, wd, 64)).astype(np.float32)
            xj, kj, gj = jnp.asarray(x), jnp.asarray(w), jnp.asarray(x)
            tx = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).contiguous(memory_format=torch.channels_last)
            tg = tx.clone()
            twc = tw.contiguous(memory_format=torch.channels_last)
            if case.startswith("forward"):
                jf = lambda: fwd(xj, kj).block_until_ready()  # noqa: E731
                tf = lambda: torch.nn.functional.conv2d(tx, twc, padding=1)  # noqa: E731
            elif case == "input_grad":
                jf = lambda: dx(xj, kj, gj).block_until_ready()  # noqa: E731
                tf = lambda: torch.nn.grad.conv2d_input(tx.shape, twc, tg, padding=1)  # noqa: E731
            else:
                jf = lambda: dw(xj, kj, gj).block_until_ready()  # noqa: E731
                tf = lambda: torch.nn.grad.conv2d_weight(tx, twc.shape, tg, padding=1)  # noqa: E731
            with torch.no_grad():
                t = interleaved({"jax": jf, "torch": tf}, 5 if self.quick else 11, warmup=2)
            gflop = 2.0 * h * wd * 64 * 64 * 9 / 1e9
            mj, mt = _med(t["jax"]), _med(t["torch"])
            K[case] = {"hw": [h, wd], "jax_s": mj, "torch_channels_last_s": mt, "ratio": mj / mt,
                       "jax_gflops": gflop / mj, "torch_gflops": gflop / mt}
            label = f"{case.replace('_', ' ')} {h}×{wd}"
            print(f"{label:<26}{_fmt_ms(mj):>11} {gflop / mj:>4.0f} GFLOP/s{_fmt_ms(mt):>13} "
                  f"{gflop / mt:>4.0f} GFLOP/s{mj / mt:>12.2f}×")
        print(f"(XLA options: {xla.compiler_options() or 'XLA defaults'}; matmul peak {self.peak:.0f} GFLOP/s)")

    def _cause(self, key: str) -> str | None:
        """The measured cause of a missed target, from the kernel and step figures."""
        K = self.R.get("kernels") or {}
        if key == "pair_speedup" and "forward" in K:
            k, J, P = K["forward"], self.R["jax"], self.R["torch"]
            need = 2 * P.get("pair_channels_last_gflops", float("nan"))
            return (f"2× PyTorch channels-last needs the whole network at {need:.0f} GFLOP/s; JAX runs it at "
                    f"{J.get('pair_network_gflops', float('nan')):.0f}, and its best layer (3×3 64→64, "
                    f"{BIG_LAYER_SHARE:.0%} of the FLOPs) alone at {k['jax_gflops']:.0f} (oneDNN: "
                    f"{k['torch_gflops']:.0f}); the 16- and 32-channel layers run far below that")
        if key in ("tno_vs_channels_last", "tno_vs_nchw") and "tno" in self.R:
            T, r = self.R["tno"], self.R["ratios"]
            text = (f"per pair JAX fuses {r.get('pair_speedup_vs_channels_last', float('nan')):.2f}× as fast "
                    f"as PyTorch channels-last, so the gap is fixed cost per process: imports, start-up and "
                    f"compiles")
            if T.get("jax_warm_cache_s"):
                text += (f" (with the compilation cache warm the run takes {T['jax_warm_cache_s']:.1f} s "
                         f"instead of {T['jax_s']:.1f} s)")
            return text
        if key.startswith("train_") and "weight_grad" in K:
            parts = ", ".join(f"{c.replace('_', ' ')} {K[c]['ratio']:.2f}×"
                              for c in ("forward_train", "input_grad", "weight_grad") if c in K)
            return (f"the step is three convolutions per layer; for the 3×3 64→64 layer, JAX / PyTorch "
                    f"time: {parts}")
        return None

    # -- TNO-21 as whole processes -------------------------------------------
    def tno_folder(self):
        from PIL import Image
        section("TNO-21 folder as a whole process (start-up and compiles included)")
        pairs = _tno_pairs(self.tno)
        if not pairs:
            print(f"skipped: {self.tno} not found (needs ir/ and vis/ PNG folders)")
            self.R["tno"] = {"skipped": f"{self.tno} not found"}
            return
        if self.tno_pairs and self.tno_pairs < len(pairs):
            pairs = sorted(pairs, key=lambda p: Image.open(p[0]).size[0] * Image.open(p[0]).size[1])
            pairs = sorted(pairs[:self.tno_pairs])
            folder = self.tmp / "tno_subset"
            for sub in ("ir", "vis"):
                (folder / sub).mkdir(parents=True, exist_ok=True)
            for ir, vis in pairs:
                shutil.copy(ir, folder / "ir" / ir.name)
                shutil.copy(vis, folder / "vis" / vis.name)
            what = (f"quick: the {len(pairs)} smallest pairs ({', '.join(p[0].stem for p in pairs)}) "
                    f"of {self.tno}")
        else:
            folder = self.tno
            what = f"all {len(pairs)} pairs of {self.tno}"
        n_use = len(pairs)
        print(f"pairs          : {what}")
        rounds = self.tno_rounds
        env = _child_env()
        runs = {"jax": []}
        jax_args = lambda out: ["--pairs", folder, "--out", out, "--no-progress",  # noqa: E731
                                "--overwrite"] + self.ckpt_arg
        print(f"JAX command    : python fuse.py --pairs {folder} --out TMP --no-progress --overwrite"
              + (" --checkpoint TMPCKPT" if self.ckpt_arg else ""))
        if self.use_torch:
            script = self.tmp / "torch_fuse.py"
            script.write_text(TORCH_FUSE_SCRIPT)
            weights = self.tmp / "weights.pt"
            if not weights.exists():
                from jaxfuse import torch_io
                torch_io.save_torch_checkpoint(self.params, weights)
            runs["torch_nchw"], runs["torch_channels_last"] = [], []
            torch_args = lambda out, fmt: [folder, out, weights, fmt, self.cores, TESTS_DIR,  # noqa: E731
                                           "1" if self.T.shared else "0"]
            print(f"PyTorch script : python torch_fuse.py (imports torch + tests/torch_reference.py, "
                  f"PIL in, PNG out, set_num_threads({self.cores}))")
        print("peak RSS       : VmHWM of each process (its own high-water mark)")
        outs = {}
        for r in range(rounds):
            for name in runs:
                out = self.tmp / f"out_{name}_{r}"
                if name == "jax":  # a fresh compilation cache: a first run, compiles included
                    cold = {**env, "JAX_COMPILATION_CACHE_DIR": str(self.tmp / f"xla_cache_{r}")}
                    res = run_script(REPO / "fuse.py", jax_args(out), tmp=self.tmp, env=cold)
                else:
                    res = run_script(script, torch_args(out, name[len("torch_"):]), tmp=self.tmp, env=env)
                wall, rc, rss, cpu, so, se = res
                if rc != 0:
                    print(f"{name}: FAILED (exit {rc}): {(se or so).strip()[-500:]}")
                    runs[name].append(None)
                    continue
                runs[name].append((wall, rss, cpu))
                outs[name] = out
                print(f"{name:<21}: round {r + 1}: {wall:.1f} s wall, {cpu:.1f} s CPU, peak RSS {_fmt_mb(rss)}",
                      flush=True)
        if runs["jax"] and runs["jax"][-1]:
            # fuse.py keeps a compilation cache: a second run on the same sizes skips compiling.
            res = run_script(REPO / "fuse.py", jax_args(self.tmp / "out_jax_warm"), tmp=self.tmp,
                             env={**env, "JAX_COMPILATION_CACHE_DIR": str(self.tmp / f"xla_cache_{rounds - 1}")})
            if res[1] == 0:
                runs["jax_warm_cache"] = [(res[0], res[2], res[3])]
                print(f"{'jax_warm_cache':<21}: {res[0]:.1f} s wall, {res[3]:.1f} s CPU, peak RSS "
                      f"{_fmt_mb(res[2])} (same command again: compiled programs from the cache)", flush=True)
        T = {"pairs": n_use, "folder": str(folder), "rounds": rounds}
        for name, rs in runs.items():
            ok = [x for x in rs if x]
            if ok:
                T[f"{name}_s"] = min(w for w, _, _ in ok)
                T[f"{name}_runs_s"] = [w for w, _, _ in ok]
                T[f"{name}_cpu_s"] = min(c for _, _, c in ok)
                T[f"{name}_rss"] = max((m for _, m, _ in ok if m is not None), default=None)
        self.R["tno"] = T
        if "jax_s" in T:
            print(f"JAX            : best of {rounds}: {T['jax_s']:.1f} s wall "
                  f"({T['jax_s'] / n_use:.2f} s/pair incl. start-up), {T['jax_cpu_s']:.1f} s CPU, "
                  f"peak RSS {_fmt_mb(T['jax_rss'])} (each round with an empty compilation cache)")
        if self.use_torch:
            for fmt in ("nchw", "channels_last"):
                if f"torch_{fmt}_s" in T:
                    print(f"PyTorch {fmt:<13}: best of {rounds}: {T[f'torch_{fmt}_s']:.1f} s wall, "
                          f"{T[f'torch_{fmt}_cpu_s']:.1f} s CPU, peak RSS {_fmt_mb(T[f'torch_{fmt}_rss'])}")
            if "jax_s" in T and "torch_channels_last_s" in T and "torch_nchw_s" in T:
                self.R["ratios"]["tno_vs_channels_last"] = T["jax_s"] / T["torch_channels_last_s"]
                self.R["ratios"]["tno_vs_nchw"] = T["jax_s"] / T["torch_nchw_s"]
                self.R["ratios"]["tno_cpu_vs_channels_last"] = T["jax_cpu_s"] / T["torch_channels_last_cpu_s"]
                self.R["ratios"]["tno_cpu_vs_nchw"] = T["jax_cpu_s"] / T["torch_nchw_cpu_s"]
                print(f"ratio          : wall time JAX / PyTorch channels-last = "
                      f"{self.R['ratios']['tno_vs_channels_last']:.2f}, / NCHW = "
                      f"{self.R['ratios']['tno_vs_nchw']:.2f} (CPU time, less disturbed by other load: "
                      f"{self.R['ratios']['tno_cpu_vs_channels_last']:.2f}, "
                      f"{self.R['ratios']['tno_cpu_vs_nchw']:.2f})")
            if "jax" in outs and "torch_channels_last" in outs:
                worst, frac = 0, []
                for ir, _ in pairs:
                    a = _load_gray(outs["jax"] / ir.name)
                    b = _load_gray(outs["torch_channels_last"] / ir.name)
                    d = np.abs(a - b)
                    worst = max(worst, int(d.max()))
                    frac.append(float(np.mean(d > 1)))
                T["output_max_abs_diff"] = worst
                T["output_frac_diff_gt1"] = float(np.mean(frac))
                print(f"agreement      : fused PNGs JAX vs PyTorch: max |diff| {worst}, "
                      f"{np.mean(frac):.3%} of pixels differ by more than 1")
        else:
            print(f"PyTorch        : PyTorch baseline skipped: {self.torch_skip_reason}")

    # -- large image by tiles ------------------------------------------------
    def large_tiled(self):
        h, w, engine, tile = self.large
        section(f"One {w}×{h} pair by tiles, fresh process ({engine})"
                + ("  [quick: not the 4000×3000 of the target]" if self.quick else ""))
        script = self.tmp / "tiled.py"
        script.write_text(TILED_SCRIPT)
        src = "-"
        from PIL import Image
        for ir, vis in _tno_pairs(self.tno):
            if Image.open(ir).size == (PAIR_HW[1], PAIR_HW[0]):
                src = f"{ir}|{vis}"
        wall, rc, rss, cpu, so, se = run_script(script, [self.ckpt, h, w, engine, src, tile], tmp=self.tmp,
                                                env=_child_env())
        L = {"h": h, "w": w, "engine": engine, "tile": tile, "process_s": wall, "rss_peak": rss,
             "input": "TNO 640×480 pair upscaled (bicubic)" if src != "-" else "synthetic"}
        if rc != 0 or rss is None:
            print(f"FAILED (exit {rc}): {(se or so).strip()[-800:]}")
            L["failed"] = True
        else:
            info = json.loads(so.strip().splitlines()[-1])
            L.update({"fuse_s": info["seconds"], "rss_before_fuse": info["rss_before"]})
            flops = fusion_flops(h, w)
            print(f"input          : {L['input']}; {w * h / 1e6:.1f} Mpixel, tiles of {tile} "
                  f"(+12 px halo each side)")
            print(f"time           : fuse_pair {info['seconds']:.1f} s ({flops / info['seconds'] / 1e9:.0f} "
                  f"GFLOP/s counting the image, not the halos), whole process {wall:.1f} s")
            print(f"peak RSS       : {_fmt_mb(rss)} ({rss / GB:.2f} GB) for the whole process; "
                  f"{_fmt_mb(info['rss_before'])} before fusing (imports, weights, the two inputs)")
        self.R["large"] = L

    # -- verdicts --------------------------------------------------------------
    def targets(self):
        section("Targets (issue)")
        R, r = self.R, self.R["ratios"]
        q_tno = " (quick: subset of pairs)" if self.quick else ""
        rows = []

        def add(key, text, value, ok, shown, best=None, best_ok=None):
            """``best``: the same ratio from the fastest runs (minima), shown when it flips the verdict."""
            verdict = "n/a" if value is None else ("MET" if ok else "MISSED")
            R["targets"][key] = {"target": text, "value": value, "verdict": verdict}
            if best is not None:
                R["targets"][key]["best_runs_value"] = best
                if bool(best_ok) != bool(ok):
                    shown += f" (best runs: {best:.2f}×, {'MET' if best_ok else 'MISSED'})"
                    self._flipped = True
            rows.append((text, shown if value is not None else
                         ("no PyTorch baseline" if not self.use_torch else "not measured"), verdict))

        v = r.get("tno_vs_channels_last")
        add("tno_vs_channels_last", "TNO-21 whole process ≤ 0.5× PyTorch channels-last" + q_tno,
            v, v is not None and v <= 0.5, f"{v:.2f}×" if v is not None else "")
        v = r.get("tno_vs_nchw")
        add("tno_vs_nchw", "TNO-21 whole process ≤ 1/3 of PyTorch NCHW" + q_tno,
            v, v is not None and v <= 1 / 3, f"{v:.2f}×" if v is not None else "")
        v, b = r.get("pair_speedup_vs_channels_last"), r.get("pair_speedup_vs_channels_last_best")
        hw = self.pair_hw
        add("pair_speedup", "480×640 pair ≥ 2× faster than PyTorch channels-last"
            + (f" (quick: {hw[0]}×{hw[1]})" if hw != PAIR_HW else ""),
            v, v is not None and v >= 2, f"{v:.2f}× faster" if v is not None else "", b, b is not None and b >= 2)
        for kind, label in (("ssim", "SSIM loss, default"), ("msssim", "MS-SSIM loss, authors'")):
            v, b = r.get(f"train_{kind}_vs_channels_last"), r.get(f"train_{kind}_vs_channels_last_best")
            add(f"train_{kind}", f"train step ({label}) ≤ 0.9× PyTorch channels-last",
                v, v is not None and v <= 0.9, f"{v:.2f}×" if v is not None else "", b, b is not None and b <= 0.9)
        L = R.get("large", {})
        v = L.get("rss_peak") if not L.get("failed") else None
        qual = "" if not self.quick else f" (quick: {L.get('w')}×{L.get('h')}, not 4000×3000)"
        add("tiled_rss", "4000×3000 pair by tiles < 2 GB resident" + qual,
            v / GB if v else None, v is not None and v < 2 * GB, f"{v / GB:.2f} GB" if v else "")
        width = max(len(t) for t, _, _ in rows)
        for (text, shown, verdict), key in zip(rows, R["targets"]):
            print(f"{text:<{width}}  {shown:>16}  {verdict}")
            cause = self._cause(key) if verdict == "MISSED" else None
            if cause:
                R["targets"][key]["measured_cause"] = cause
                print(f"    measured cause: {cause}")
        la = R["env"]["loadavg_start"][0]
        if la > 0.5 * self.cores:
            self._busy_note = (f"The machine was busy (load average {la:.1f} on {self.cores} cores): "
                               "PyTorch's OpenMP threads lose far more than XLA's thread pool when cores "
                               "are oversubscribed, so these verdicts can be wrong; quote an idle run.")
            print(self._busy_note)
        if getattr(self, "_flipped", False):
            print("Some verdicts flip on the fastest runs (ratio of the minima): the machine was busy "
                  "and the two frameworks suffered unequally (PyTorch's OpenMP barriers lose most when "
                  "cores are oversubscribed); rerun on an idle machine before quoting them.")
        self._rows = rows

    # -- markdown --------------------------------------------------------------
    def markdown(self) -> str:
        R, J, P, T = self.R, self.R["jax"], self.R["torch"], self.R.get("tno", {})
        env = R["env"]
        L = R.get("large", {})
        t = self.use_torch
        lines = [
            "### Performance (`python -m jaxfuse.bench" + (" --quick" if self.quick else "") + "`)",
            "",
            f"{env['cpu']}, {self.cores} cores, JAX {env['jax']} on {env['jax_backend']}"
            + (f", PyTorch {env['torch']} CPU fp32 with {env['torch_threads']} threads" if t else "")
            + f"; load average {env['loadavg_start'][0]:.1f} at the start"
            + (" (busy machine: absolute times inflated, JAX and PyTorch interleaved)"
               if env['loadavg_start'][0] > 0.5 * self.cores else "") + ".",
            "",
            "| | jaxfuse (JAX) | PyTorch channels-last | PyTorch NCHW | JAX / PyTorch CL |",
            "|---|---|---|---|---|",
        ]

        def row(name, j, cl, nc, ratio):
            lines.append(f"| {name} | {j} | {cl if t else '—'} | {nc if t else '—'} | {ratio if t else '—'} |")

        rr = R["ratios"]
        h, w = self.pair_hw
        gf = lambda v: "n/a" if v is None else f"{v:.0f}"  # noqa: E731
        row(f"fusion, one {h}×{w} pair (steady)", _fmt_ms(J.get("pair_steady_s")),
            _fmt_ms(P.get("pair_channels_last_s")), _fmt_ms(P.get("pair_nchw_s")),
            f"{1 / rr['pair_speedup_vs_channels_last']:.2f}×" if "pair_speedup_vs_channels_last" in rr else "")
        row("  its compilation (first call − steady)", _fmt_s(J.get("pair_compile_est_s")), "—", "—", "")
        if "jax_s" in T:
            row(f"TNO-21 folder, whole process ({T['pairs']} pairs)", f"{T['jax_s']:.1f} s",
                f"{T.get('torch_channels_last_s', float('nan')):.1f} s",
                f"{T.get('torch_nchw_s', float('nan')):.1f} s",
                f"{rr['tno_vs_channels_last']:.2f}×" if "tno_vs_channels_last" in rr else "")
        if "jax_warm_cache_s" in T:
            row("  the same, run again (compilation cache warm)", f"{T['jax_warm_cache_s']:.1f} s", "—", "—",
                f"{T['jax_warm_cache_s'] / T['torch_channels_last_s']:.2f}×"
                if "torch_channels_last_s" in T else "")
        for kind, label in (("ssim", "SSIM"), ("msssim", "MS-SSIM")):
            row(f"train step 256×256, {label} loss", _fmt_ms(J.get(f"train_{kind}_s")),
                _fmt_ms(P.get(f"train_{kind}_channels_last_s")), _fmt_ms(P.get(f"train_{kind}_nchw_s")),
                f"{rr[f'train_{kind}_vs_channels_last']:.2f}×" if f"train_{kind}_vs_channels_last" in rr else "")
        row("2000 training steps (SSIM), projected (JAX: + compile)", _fmt_s(J.get("train_ssim_2000_steps_s")),
            _fmt_s(P.get("train_ssim_channels_last_2000_steps_s")), _fmt_s(P.get("train_ssim_nchw_2000_steps_s")), "")
        row(f"fusion GFLOP/s ({h}×{w}; JAX: network alone)", f"{J.get('pair_network_gflops', 0):.0f} "
            f"({J.get('pair_network_gflops', 0) / self.peak:.0%} of matmul peak)",
            gf(P.get("pair_channels_last_gflops")), gf(P.get("pair_nchw_gflops")), "")
        row("train GFLOP/s (SSIM)", f"{J.get('train_ssim_gflops', 0):.0f} "
            f"({J.get('train_ssim_gflops', 0) / self.peak:.0%} of matmul peak)", "", "", "")
        if "jax_rss" in T:
            row("peak RSS, TNO-21 process", _fmt_mb(T.get("jax_rss")), _fmt_mb(T.get("torch_channels_last_rss")),
                _fmt_mb(T.get("torch_nchw_rss")), "")
        if L and not L.get("failed"):
            row(f"{L['w']}×{L['h']} pair by tiles: time / peak RSS",
                f"{L['fuse_s']:.1f} s / {_fmt_mb(L['rss_peak'])}", "—", "—", "")
        lines += ["", f"float32 matmul peak measured here: {self.peak:.0f} GFLOP/s (2048³ `jnp.dot`). "
                  f"FLOPs are analytic conv FLOPs (fusion of a {h}×{w} pair: "
                  f"{fusion_flops(h, w) / 1e9:.1f} GFLOP; train step: {train_flops(256, 256) / 1e9:.1f} GFLOP)."
                  + (" PyTorch train losses: separable-Gaussian SSIM (dm-pix's definition) / the authors' "
                     "MS-SSIM, each + 0–1 MSE, as jaxfuse." if t else ""),
                  "", "| target | measured | | measured cause of a miss |", "|---|---|---|---|"]
        for (text, shown, verdict), key in zip(self._rows, R["targets"]):
            lines.append(f"| {text} | {shown} | **{verdict}** | {R['targets'][key].get('measured_cause', '')} |")
        K = R.get("kernels") or {}
        if K:
            lines += ["", "The 3×3 64→64 convolution alone (JAX / PyTorch channels-last time): "
                      + "; ".join(f"{c.replace('_', ' ')} {v['hw'][0]}×{v['hw'][1]} {v['ratio']:.2f}× "
                                  f"({v['jax_gflops']:.0f} vs {v['torch_gflops']:.0f} GFLOP/s)"
                                  for c, v in K.items()) + "."]
        lines += ["", "Times are medians of interleaved runs (whole processes: best of the rounds); "
                  "“best runs” compares the fastest run of each side."]
        if getattr(self, "_busy_note", None):
            lines += ["", f"**{self._busy_note}**"]
        return "\n".join(lines)

    def run(self):
        t0 = time.perf_counter()
        try:
            self.environment()
            self.setup_model()
            self.matmul_peak()
            self.fusion_pair()
            self.training()
            self.kernels()
            self.tno_folder()
            self.large_tiled()
            self.R["bench_process_maxrss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            section("Memory")
            print(f"this benchmark process (JAX{' + PyTorch' if self.use_torch else ''}, all in-process "
                  f"phases): peak RSS {_fmt_mb(self.R['bench_process_maxrss'])}; per-process peaks are "
                  f"in the TNO-21 and tiles sections")
            self.targets()
            self.R["env"]["loadavg_end"] = list(os.getloadavg())
            self.R["bench_seconds"] = time.perf_counter() - t0
            section("Markdown summary (for the README)")
            md = self.markdown()
            print(md)
            self.R["markdown"] = md
            la = self.R["env"]["loadavg_end"]
            print(f"\n(benchmark took {self.R['bench_seconds']:.0f} s; load average at the end "
                  f"{la[0]:.2f} {la[1]:.2f} {la[2]:.2f})")
            if self.args.json:
                Path(self.args.json).write_text(json.dumps(self.R, indent=2, default=float))
                print(f"figures written to {self.args.json}")
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m jaxfuse.bench",
                                description="jaxfuse performance benchmark against the PyTorch network")
    p.add_argument("--quick", action="store_true",
                   help="fewer repeats, a 240×320 pair, the 4 smallest TNO pairs and a 768×512 tiled "
                        "image (about 2 minutes)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch baseline")
    p.add_argument("--json", metavar="OUT", help="also write all figures to this JSON file")
    p.add_argument("--tno", metavar="DIR", help=f"TNO-21 folder (default {DEFAULT_TNO})")
    args = p.parse_args(argv)
    if not args.no_torch and not torch_available():
        print("PyTorch baseline skipped: torch not installed")
    return Bench(args).run()


if __name__ == "__main__":
    sys.exit(main())
