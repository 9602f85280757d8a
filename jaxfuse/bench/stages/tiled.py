"""One large pair fused by tiles in a fresh process: time and peak resident memory."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from jaxfuse.bench.config import PROGRAMS, BenchConfig
from jaxfuse.bench.inputs import large_source
from jaxfuse.bench.process import child_env, run_script

TILED_FUSE = PROGRAMS / "tiled_fuse.py"


@dataclasses.dataclass
class TiledRun:
    h: int
    w: int
    engine: str          # auto_fuse or tiled_fuse
    tile: int
    input: str
    flops: float
    process_s: float     # the whole process
    rss_peak: int | None
    failed: bool = False
    returncode: int = 0
    error: str = ""      # the end of the child's output when it failed
    fuse_s: float | None = None           # fuse_pair alone
    rss_before_fuse: int | None = None    # imports, weights, the two inputs


def time_tiled(cfg: BenchConfig, model, tmp: Path) -> TiledRun:
    h, w, engine, tile = cfg.large
    src = large_source(cfg.tno)
    res = run_script(TILED_FUSE, [model.checkpoint, h, w, engine, src, tile], tmp=tmp, env=child_env())
    out = TiledRun(h=h, w=w, engine=engine, tile=tile, flops=model.flops.fusion(h, w),
                   input="TNO 640×480 pair upscaled (bicubic)" if src != "-" else "synthetic",
                   process_s=res.wall_s, rss_peak=res.rss)
    if not res.ok or res.rss is None:
        out.failed, out.returncode, out.error = True, res.returncode, res.error_tail(800)
        return out
    info = json.loads(res.stdout.strip().splitlines()[-1])
    out.fuse_s, out.rss_before_fuse = info["seconds"], info["rss_before"]
    return out
