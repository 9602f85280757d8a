"""What one benchmark run measures and how often: :class:`BenchConfig`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from jaxfuse.bench.util import cores, torch_available

REPO = Path(__file__).resolve().parents[2]
PROGRAMS = Path(__file__).resolve().parent / "programs"
PAIR_HW = (480, 640)
TRAIN_SIZE = 256
TRAIN_STEPS = 2000
GB = 1e9
LOSSES = ("ssim", "msssim")


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """Sizes and repeats of every stage; :meth:`from_flags` gives the command's two modes.

    ``use_torch`` is whether the PyTorch baseline runs; ``torch_skip_reason``
    says why not when it does not.
    """
    quick: bool = False
    use_torch: bool = True
    torch_skip_reason: str | None = None
    tno: Path | None = None  # the TNO-21 pairs folder; None: synthetic pair, no folder stage
    json: str | None = None
    cores: int = 1
    pair_hw: tuple[int, int] = PAIR_HW
    fmts: tuple[str, ...] = ("nchw", "channels_last")  # PyTorch memory formats timed
    reps_pair: int = 9
    reps_train: tuple[tuple[str, int], ...] = (("ssim", 15), ("msssim", 7))
    reps_mm: int = 9
    reps_kernel: int = 11
    matmul_n: int = 2048
    train_size: int = TRAIN_SIZE
    train_steps: int = TRAIN_STEPS
    tno_pairs: int | None = None  # the N smallest pairs only; None: all
    tno_rounds: int = 2
    large: tuple[int, int, str, int] = (3000, 4000, "auto_fuse", 512)  # h, w, engine, tile

    @classmethod
    def from_flags(cls, *, quick: bool = False, no_torch: bool = False, tno=None,
                   json: str | None = None) -> "BenchConfig":
        have_torch = torch_available()
        base = dict(quick=quick, use_torch=not no_torch and have_torch,
                    torch_skip_reason=("--no-torch" if no_torch else
                                       "torch not installed" if not have_torch else None),
                    tno=Path(tno) if tno else None, json=json, cores=cores())
        if not quick:
            return cls(**base)
        # Quick mode compares against channels-last only where no target needs NCHW.
        return cls(**base, pair_hw=(240, 320), fmts=("channels_last",), reps_pair=3,
                   reps_train=(("ssim", 3), ("msssim", 2)), reps_mm=5, reps_kernel=5,
                   tno_pairs=4, tno_rounds=1, large=(512, 768, "tiled_fuse", 256))

    def reps_for(self, loss: str) -> int:
        return dict(self.reps_train)[loss]


def is_busy(load: float, n_cores: int) -> bool:
    """The benchmark's rule for a busy machine: 1-minute load above half the cores."""
    return load > 0.5 * n_cores
