"""Fuses one large pair by tiles in a fresh process; prints one JSON line (time, RSS).

    python tiled_fuse.py CHECKPOINT H W {tiled_fuse,auto_fuse} SOURCE TILE

SOURCE is ``IR|VIS`` (two images, resized bicubically to H×W) or ``-`` (smooth
synthetic noise).
"""
import json
import resource
import sys
import time

import numpy as np
from PIL import Image

from jaxfuse import checkpoint, engine as eng
from jaxfuse.fusion import fuse_pair

ckpt, h, w, engine, src = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
tile = int(sys.argv[6])
params, _ = checkpoint.load_params(ckpt)


def load(path, seed):
    if path != "-":
        img = Image.open(path).convert("L").resize((w, h), Image.BICUBIC)
        return np.asarray(img, np.float32)
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (h // 16, w // 16)).astype(np.float32)
    return np.clip(np.asarray(Image.fromarray(small, mode="F").resize((w, h), Image.BICUBIC)), 0, 255)


def vmhwm():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


ir_path, vis_path = src.split("|") if src != "-" else ("-", "-")
ir, vis = load(ir_path, 0), load(vis_path, 1)
rss0 = vmhwm()
if engine == "tiled_fuse":
    def fn(p, s, **kw):
        return eng.tiled_fuse(p, s, tile=tile, **kw)
else:
    fn = eng.auto_fuse
t0 = time.perf_counter()
out = fuse_pair(params, ir, vis, fuse_fn=fn)
t = time.perf_counter() - t0
rss1 = vmhwm()
print(json.dumps({"seconds": t, "rss_before": rss0, "rss_peak": rss1, "shape": list(out.shape)}))
