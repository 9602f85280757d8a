"""The benchmark package: FLOPs read off the parameters, its smallest stages on tiny sizes, its imports.

The full benchmark is ``python -m jaxfuse.bench`` (minutes); these tests run
the in-process stages on 32×40 images with one repeat, check the figures they
return, and render the report from them.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from jaxfuse import checkpoint, model
from jaxfuse.bench import printer, results, targets
from jaxfuse.bench.config import BenchConfig
from jaxfuse.bench.flops import conv_flops
from jaxfuse.bench.markdown import markdown
from jaxfuse.bench.stages import folder, kernels, pair, setup, tiled, train

REPO = Path(__file__).resolve().parents[1]

# The hand-written layer tables the benchmark used before it read FLOPs off the
# parameters: (kernel, Cin, Cout, applications per forward pass). Res2NetFuse's
# shared 3×3 conv serves both applications of F in each of the three groups.
HAND_TABLES = {
    "res2netfuse": ([(3, 1, 32, 1), (3, 32, 64, 1), (1, 64, 64, 1), (3, 16, 16, 6), (1, 64, 64, 1)],
                    [(3, 64, 64, 1), (3, 64, 32, 1), (3, 32, 16, 1), (3, 16, 1, 1)]),
    "densefuse": ([(3, 1, 16, 1), (3, 16, 16, 1), (3, 32, 16, 1), (3, 48, 16, 1)],
                  [(3, 64, 64, 1), (3, 64, 32, 1), (3, 32, 16, 1), (3, 16, 1, 1)]),
    "msdnet": ([(3, 1, 16, 1), (3, 16, 16, 1), (3, 32, 16, 1), (3, 48, 16, 1),
                (1, 64, 64, 1), (3, 64, 64, 1), (5, 64, 64, 1)],
               [(3, 192, 64, 1), (3, 64, 32, 1), (3, 32, 16, 1), (3, 16, 1, 1)]),
}


def _fpp(layers) -> int:
    return sum(2 * k * k * cin * cout * uses for k, cin, cout, uses in layers)


@pytest.mark.parametrize("config", [model.ModelConfig(), model.ModelConfig(shared=False),
                                    model.ModelConfig("densefuse"), model.ModelConfig("msdnet")],
                         ids=["res2netfuse", "res2netfuse-separate", "densefuse", "msdnet"])
def test_flops_from_params_equal_the_hand_tables(config):
    enc, dec = HAND_TABLES[config.arch]
    f = conv_flops(checkpoint.abstract_params(config))  # shapes only: nothing is computed
    assert (f.encoder, f.decoder, f.first_layer) == (_fpp(enc), _fpp(dec), _fpp(enc[:1]))
    assert f.fusion(480, 640) == (2 * _fpp(enc) + _fpp(dec)) * 480 * 640
    assert f.train(256, 256) == 3 * (_fpp(enc) + _fpp(dec)) * 256 * 256 - _fpp(enc[:1]) * 256 * 256
    assert f.decoder_first.fpp == _fpp(dec[:1])
    if config.arch == "res2netfuse":  # the figures the benchmark has always printed
        assert (f.encoder, f.decoder) == (81_472, 120_096)
        assert round(f.fusion(480, 640) / 1e9, 1) == 86.9 and round(f.train(256, 256) / 1e9, 1) == 39.6
        assert f"{f.big_layer_share:.0%}" == "26%"


def test_no_module_of_the_package_imports_tests():
    offenders = []
    for path in sorted((REPO / "jaxfuse").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names
                          if n.split(".")[0] in ("tests", "torch_reference", "conftest")]
        if "sys.path" in path.read_text() and '"tests"' in path.read_text():
            offenders.append(f"{path.relative_to(REPO)}: puts tests/ on sys.path")
    assert not offenders


def test_the_package_and_its_command_import_without_torch():
    code = ("import sys, runpy; sys.modules['torch'] = None; import jaxfuse.bench; "
            "sys.argv = ['bench', '--help']; runpy.run_module('jaxfuse.bench', run_name='__main__')")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert p.returncode == 0, p.stderr
    for flag in ("--quick", "--no-torch", "--json", "--tno"):
        assert flag in p.stdout


def _fields(obj) -> set:
    return {f.name for f in dataclasses.fields(obj)}


def test_smallest_stages_on_tiny_sizes(tmp_path, capsys):
    cfg = dataclasses.replace(BenchConfig.from_flags(quick=True), tno=tmp_path / "no-tno", pair_hw=(32, 40),
                              reps_pair=1, reps_mm=1, reps_kernel=1, matmul_n=64, train_size=32,
                              reps_train=(("ssim", 1),))
    R = results.Results(cfg)
    R.env = setup.environment(cfg)
    assert R.env.cores_usable == cfg.cores and len(R.env.loadavg_start) == 3
    R.model = setup.setup_model(cfg, tmp_path)
    assert R.model.arch == "res2netfuse" and R.model.parameters == model.count_params(R.model.params)
    side = None
    if cfg.use_torch:
        from jaxfuse.bench.torch_side import TorchSide
        side = TorchSide(R.model.params, cfg.cores)

    R.matmul = pair.matmul_peak(cfg, side)
    assert R.matmul.n == 64 and len(R.matmul.jax_times_s) == 1 and R.matmul.peak_gflops > 0

    R.pair = p = pair.time_pair(cfg, R.model, side)
    assert _fields(p) >= {"hw", "steady_s", "network_s", "compile_est_s", "gflops", "network_gflops",
                          "torch", "speedup", "speedup_best"}
    assert p.hw == (32, 40) and p.bucket == (32, 64) and p.source == "synthetic smooth noise"
    assert p.flops == R.model.flops.fusion(32, 40)
    assert p.steady_s > 0 and p.network_s > 0 and len(p.times_s) == len(p.network_times_s) == 1
    assert p.gflops == pytest.approx(p.flops / p.steady_s / 1e9)
    if side is not None:
        assert set(p.torch) == set(cfg.fmts) == set(p.speedup) and p.torch["channels_last"].s > 0
        assert p.output_max_abs_diff <= 1  # the same network, the same weights, the same output step

    R.train = train.time_train(cfg, R.model, side, losses=("ssim",), tmp=tmp_path)  # MS-SSIM needs 176×176
    for kind, t in R.train.items():
        assert t.loss == kind and t.size == 32 and t.s > 0 and t.compile_s > 0
        assert t.projected_s == pytest.approx(2000 * t.s + t.compile_s)
        assert t.first_loss == t.first_loss  # finite, not NaN
        if side is not None:
            assert t.torch_first_loss == pytest.approx(t.first_loss, rel=0.05)  # the same loss, near 0 here
            # PyTorch channels-last again, in a process of its own with glibc's malloc defaults
            assert len(t.torch_own.times_s) == 1 and t.ratio_own == pytest.approx(t.s / t.torch_own.s)

    R.kernels = kernels.time_conv(cfg, side)
    if side is None:
        assert R.kernels.skipped and not R.kernels.cases
    else:
        assert list(R.kernels.cases) == ["forward", "forward_train", "input_grad", "weight_grad"]
        assert all(c.ratio > 0 for c in R.kernels.cases.values())

    R.folder = plan = folder.plan_folder(cfg, tmp_path)
    assert plan.skipped and not plan.pairs
    R.tiled = tiled.TiledRun(h=512, w=768, engine="tiled_fuse", tile=256, input="synthetic",
                             flops=R.model.flops.fusion(512, 768), process_s=1.0, rss_peak=None,
                             failed=True, returncode=1, error="not run here")
    R.targets = targets.judge(R)
    assert [t.key for t in R.targets.rows] == ["tno_vs_channels_last", "tno_vs_nchw", "pair_speedup",
                                              "train_ssim", "train_msssim", "tiled_rss"]
    assert {t.verdict for t in R.targets.rows[:2]} == {"n/a"} and R.targets.rows[-1].verdict == "n/a"

    printer.env(R.env, cfg)
    printer.model(R.model)
    printer.pair(R.pair, cfg, R.peak)
    printer.train(R.train, cfg, R.peak)
    printer.kernels(R.kernels, R.peak)
    printer.targets(R.targets)
    out = capsys.readouterr().out
    assert "encoder 81,472, decoder 120,096" in out and "JAX fuse_pair  : median" in out
    assert "JAX 2000 steps :" in out
    R.env.loadavg_end, R.bench_seconds = [0.0, 0.0, 0.0], 1.0
    R.markdown = markdown(R)
    assert R.markdown.startswith("### Performance (`python -m jaxfuse.bench --quick`)")
    figures = json.loads(json.dumps(results.to_json(R), default=float))
    if side is not None:
        assert "train_ssim_vs_channels_last_own_process" in figures["ratios"]
        assert "as shipped" in R.targets.rows[3].shown
    assert list(figures)[:5] == ["mode", "jax", "torch", "ratios", "targets"]
    assert figures["tno"] == {"skipped": f"{cfg.tno} not found"} and figures["large"]["failed"] is True
    assert figures["jax"]["pair_hw"] == [32, 40] and "train_ssim_2000_steps_s" in figures["jax"]
