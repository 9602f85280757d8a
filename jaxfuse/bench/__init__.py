"""Performance benchmark: jaxfuse against the PyTorch Res2NetFuse, one run, one machine.

    python -m jaxfuse.bench                  # full run (several minutes on 2 cores)
    python -m jaxfuse.bench --quick          # fewer repeats, smaller sizes (about 2 minutes)
    python -m jaxfuse.bench --no-torch       # JAX figures only
    python -m jaxfuse.bench --json out.json  # also write every figure as JSON

What it measures, each figure for JAX and (when ``torch`` is installed) for
the independent PyTorch network of :mod:`jaxfuse.bench.torch_baseline` with
the same weights, CPU, fp32, ``torch.set_num_threads(cores)``:

* fusion of one 480×640 pair: median steady-state time of the user path
  (:func:`jaxfuse.fusion.fuse_pair`, NumPy in, uint8 out) and of the network
  alone; compilation reported separately (first call minus steady state, and
  ``.lower()`` / ``.compile()`` timed on cleared caches). PyTorch in NCHW and
  in channels-last memory format (network + the same uint8 output step);
* the TNO-21 folder as a whole process, start-up and compiles included:
  ``fuse.py --pairs TNO --out TMP --no-progress`` (``--tno TNO``) against a
  small PyTorch fuse script (PIL in, PNG out) in both memory formats;
* a training step at 256×256 (batch 1, Adam 5e-4) for both losses: the SSIM
  loss (jaxfuse's default; PyTorch: an 11-tap σ 1.5 separable Gaussian SSIM
  on the 0–1 scale, as dm-pix computes it, + the 0–1 MSE) and the authors'
  MS-SSIM (SPEC; PyTorch: the same formula, separable Gaussian), and the
  2000-step projection;
* GFLOP/s from analytic convolution FLOPs (2·H·W·Cin·Cout·k² per layer, read
  off the parameter tree by :mod:`jaxfuse.bench.flops`, the shared 3×3 conv of
  the Res2Net block counted at each of its 6 uses; XLA's ``cost_analysis``
  printed beside it) and the fraction of a float32 matmul peak measured here
  (median of a 2048³ ``jnp.dot``);
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

Layout: :func:`jaxfuse.bench.runner.run` calls the stages of
:mod:`jaxfuse.bench.stages` (each returns a dataclass of its figures) and
:mod:`jaxfuse.bench.printer` prints them; the whole-process runs are the
scripts in ``jaxfuse/bench/programs/``; the command line is
:mod:`jaxfuse.commands.bench`. Importing the package needs neither JAX nor
torch.
"""

from jaxfuse.bench.config import BenchConfig
from jaxfuse.bench.runner import run

__all__ = ["BenchConfig", "run"]
