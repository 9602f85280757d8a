"""The paper's numbers and the reproduction's fixed choices (strategies, metrics, networks).

Paper values, transcribed from paper/res2netfuse.txt (Song et al., Res2NetFuse):
Table IV / Table II "Res2NetFuse_1" rows (also in SPEC.md), Table II
"Res2NetFuse_80000" rows, and Table III. Means over 20 TNO pairs (Tables II
and IV) and 20 MS-COCO images (Table III).
"""

from __future__ import annotations

from jaxfuse.model import ARCHS, arch_spec

RECON_METRICS = ("SSIM", "PSNR", "MSE")
LOWER_IS_BETTER = {"MSE"}
PAPER_METRIC_ORDER = ("SSIM_a", "EN", "MI", "Qabf", "FMI_dct", "FMI_w", "SCD", "MS_SSIM")


def _P(*values: float) -> dict[str, float]:
    return dict(zip(PAPER_METRIC_ORDER, values))


PAPER_SINGLE = {  # Table IV "Res2NetFuse" = Table II "Res2NetFuse_1"
    "l1": _P(0.72520, 6.81785, 13.63569, 0.48364, 0.37552, 0.42924, 1.69888, 0.85384),
    "mean": _P(0.74206, 6.76675, 13.53350, 0.46368, 0.40262, 0.42334, 1.83464, 0.92129),
}
PAPER_MANY = {  # Table II "Res2NetFuse_80000"
    "l1": _P(0.70881, 6.83607, 13.67214, 0.47354, 0.37620, 0.43160, 1.67887, 0.84166),
    "mean": _P(0.72993, 6.77470, 13.54940, 0.45175, 0.40685, 0.42417, 1.82024, 0.91695),
}
# SPEC.md "Calibration, measured here": a PyTorch version of the authors' recipe
# (MS-SSIM loss, camera image, 2000 steps, seed 0), 21-pair means, kit definitions.
CALIBRATION = {
    "l1": _P(0.72282, 6.84697, 13.69395, 0.48249, 0.37457, 0.42870, 1.70287, 0.85500),
    "mean": _P(0.74075, 6.80928, 13.61857, 0.46334, 0.39957, 0.42325, 1.82955, 0.91937),
}
PAPER_RECON = {  # Table III (MSE on the 0-1 scale; PSNR and MSE are per-image averages)
    "Res2NetFuseRecons_1": {"SSIM": 0.99560, "PSNR": 40.36431, "MSE": 0.00042},
    "Res2NetFuseRecons_80000": {"SSIM": 0.99888, "PSNR": 46.50366, "MSE": 0.00005},
    "DenseFuseRecons": {"SSIM": 0.99560, "PSNR": 43.62612, "MSE": 0.00016},
    "MSDNetRecons": {"SSIM": 0.99933, "PSNR": 52.10881, "MSE": 0.00001},
}

# The paper's six comparison methods (Table IV), as published, in its order. The paper gives
# one row per method without a strategy (key None), but two for MSDNet, its l1 and mean.
PAPER_BASELINES = {
    "dchwt": {None: _P(0.73078, 6.53455, 13.06910, 0.45890, 0.38061, 0.39700, 1.61007, 0.84278)},
    "jsr": {None: _P(0.60912, 6.38043, 12.76086, 0.36267, 0.16738, 0.21284, 1.75518, 0.84735)},
    "jsrsd": {None: _P(0.54471, 6.66771, 13.33541, 0.32914, 0.14560, 0.18697, 1.59142, 0.76548)},
    "densefuse": {None: _P(0.72829, 6.66296, 13.32592, 0.43454, 0.41456, 0.42525, 1.83379, 0.92860)},
    "fusiongan": {None: _P(0.65207, 6.36496, 12.72993, 0.21853, 0.36097, 0.36797, 1.45818, 0.73233)},
    "msdnet": {"l1": _P(0.76365, 6.40040, 12.80079, 0.44416, 0.37547, 0.41741, 1.61825, 0.83311),
               "mean": _P(0.77453, 6.28483, 12.56966, 0.39214, 0.39046, 0.41116, 1.67953, 0.87041)},
}

# Published re-runs of JSR and JSRSD on the 21 TNO pairs (the fused images of the public
# collection thfylsty/Classic-and-state-of-the-art-image-fusion-methods), scored with the
# reference kit: 21-pair means, the kit's MI (2·EN). Within about 1 % of the paper's rows, so
# they are what our implementations are held to (the paper's 20 pairs are unnamed).
PUBLISHED_RERUNS = {
    "jsr": _P(0.60641579, 6.36327146, 12.72654291, 0.35888744,
              0.16437669, 0.20815361, 1.75065622, 0.84484362),
    "jsrsd": _P(0.54096973, 6.69287645, 13.38575289, 0.32612895,
                0.14440621, 0.18459895, 1.59796196, 0.76794441),
}

# How each comparison method is made: "method" (no weights: jaxfuse.methods), "network"
# (trained here single- and many-image like Res2NetFuse), "pairs-network" (trained on
# infrared/visible pairs: the shipped FusionGAN, or a checkpoint given).
BASELINE_KINDS = {"dchwt": "method", "jsr": "method", "jsrsd": "method", "densefuse": "network",
                  "fusiongan": "pairs-network", "msdnet": "network"}
BASELINES = tuple(PAPER_BASELINES)
NETWORK_BASELINES = tuple(b for b in BASELINES if BASELINE_KINDS[b] == "network")
METHOD_STRATEGY = "fused"  # the one "strategy" folder of a weight-free method's fusions

# The networks, from jaxfuse's architecture table: Res2NetFuse and the comparison networks
# the paper has rows for, each fused with its own paper's strategies (Res2NetFuse: l1 and
# mean; DenseFuse: addition and l1_block, as its paper; MSDNet: l1 and mean, this paper's rows;
# FusionGAN: its generator, no strategy).
MAIN_ARCH = ARCHS[0]
STRATEGIES = arch_spec(MAIN_ARCH).strategies


def baseline_strategies(name: str) -> tuple[str, ...]:
    """The strategies a comparison method is fused with (a weight-free method: one)."""
    if BASELINE_KINDS[name] == "method":
        return (METHOD_STRATEGY,)
    return arch_spec(name).strategies


def title(name: str) -> str:
    """The method's name as the paper writes it (``DenseFuse``, ``DCHWT``)."""
    if BASELINE_KINDS.get(name) == "method":
        from jaxfuse.methods import get_method
        return get_method(name).title
    return arch_spec(name).title


def strategies_for(arch: str) -> tuple[str, ...]:
    """The fusion strategies a network of ``arch`` is scored with."""
    return arch_spec(arch).strategies
