"""The first two stages: the machine and software, and the weights the benchmark runs."""

from __future__ import annotations

import dataclasses
import os
import platform
from pathlib import Path
from typing import Any

from jaxfuse import allocator
from jaxfuse.bench.config import REPO, BenchConfig
from jaxfuse.bench.flops import ConvFlops, conv_flops
from jaxfuse.bench.util import cpu_flags, cpu_model


@dataclasses.dataclass
class EnvInfo:
    """Machine, versions, load; the ``torch_*`` fields only when the PyTorch baseline runs."""
    python: str
    platform: str
    cpu: str
    cpu_flags: str
    cores_usable: int
    cpu_count: int | None
    loadavg_start: list
    jax: str
    jaxlib: str
    jax_backend: str
    jax_devices: list
    device_kind: str
    xla_flags: str
    malloc: str = ""  # jaxfuse.allocator.describe()
    flax: str | None = None
    optax: str | None = None
    numpy: str | None = None
    torch: str | None = None
    torch_threads: int | None = None
    torch_interop_threads: int | None = None
    torch_mkldnn: bool | None = None
    loadavg_end: list | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def environment(cfg: BenchConfig) -> EnvInfo:
    """Describes the machine; sets PyTorch's thread count to the usable cores."""
    import jax
    import jaxlib
    env = EnvInfo(
        python=platform.python_version(), platform=platform.platform(), cpu=cpu_model(),
        cpu_flags=cpu_flags(), cores_usable=cfg.cores, cpu_count=os.cpu_count(),
        loadavg_start=list(os.getloadavg()), jax=jax.__version__, jaxlib=jaxlib.__version__,
        jax_backend=jax.default_backend(), jax_devices=[str(d) for d in jax.devices()],
        device_kind=jax.devices()[0].device_kind, xla_flags=os.environ.get("XLA_FLAGS", ""),
        malloc=allocator.describe())
    for mod in ("flax", "optax", "numpy"):
        try:
            setattr(env, mod, __import__(mod).__version__)
        except Exception:  # noqa: BLE001
            pass
    if cfg.use_torch:
        import torch
        torch.set_num_threads(cfg.cores)
        env.torch = torch.__version__
        env.torch_threads = torch.get_num_threads()
        env.torch_interop_threads = torch.get_num_interop_threads()
        env.torch_mkldnn = bool(torch.backends.mkldnn.is_available())
    return env


@dataclasses.dataclass
class ModelInfo:
    """The benchmark's weights: where from, the network, its conv FLOPs."""
    weights: str              # a sentence: which checkpoint, or fresh weights
    arch: str
    title: str                # the network's name ("Res2NetFuse")
    shared: bool
    parameters: int
    flops: ConvFlops
    checkpoint: Path          # an Orbax checkpoint of ``params`` (for the child processes)
    checkpoint_args: list     # what ``fuse.py`` needs to read it ([] for the shipped one)
    params: Any = dataclasses.field(repr=False, default=None)


def setup_model(cfg: BenchConfig, tmp: Path) -> ModelInfo:
    """Parameters: the shipped checkpoint, else fresh ones saved to a temp Orbax checkpoint."""
    import jax

    from jaxfuse import assets, checkpoint, model
    from jaxfuse.errors import JaxfuseError
    try:
        shipped = assets.shipped_checkpoint()
    except JaxfuseError:
        shipped = None
    if shipped is not None:
        params, _ = checkpoint.load_params(shipped)
        ckpt, ckpt_arg = shipped, []
        shown = shipped.relative_to(REPO) if shipped.is_relative_to(REPO) else shipped
        what = f"shipped checkpoint {shown}"
    else:
        params = model.init_params(jax.random.key(0))
        ckpt = tmp / "ckpt"
        checkpoint.save(checkpoint.manager(ckpt), 0, params,
                        checkpoint.make_meta(model.config_from_params(params), 0))
        ckpt_arg = ["--checkpoint", str(ckpt)]
        what = "no shipped checkpoint: fresh init_params(key(0)) saved to a temp Orbax checkpoint"
    config = model.config_from_params(params)
    return ModelInfo(weights=what, arch=config.arch, title=model.arch_spec(config).title, shared=config.shared,
                     parameters=model.count_params(params), flops=conv_flops(params),
                     checkpoint=ckpt, checkpoint_args=ckpt_arg, params=params)
