"""What defines a reproduction run, and the tiny pairs a quick run makes for itself."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from jaxfuse.errors import JaxfuseError

from .paper import BASELINES, NETWORK_BASELINES

LOSSES = ("ssim", "msssim")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything that defines a reproduction run."""
    pairs: str | None = None          # the TNO pairs folder; None only with ``quick``
    steps: int = 2000                 # single-image training length
    many_steps: int | None = None     # many-image model; None = ``steps``
    seeds: tuple[int, ...] = (0, 1, 2)
    images: tuple[str, ...] = ("camera", "astronaut", "coffee")
    size: int = 256                   # training image side
    loss: str = "ssim"
    many_images: tuple[str, ...] = ("bundled",)  # the many-image model's folders (``jaxfuse.data``)
    many_augment: str = "crops"       # its augmentation: a small set needs crops
    crop: int = 512                   # Table III: centre crop to at most crop × crop
    max_pairs: int | None = None      # None: all pairs; else the N smallest (by area)
    montage_pairs: int = 4
    baselines: tuple[str, ...] = BASELINES  # the paper's comparison methods to run
    baseline_many: bool = True        # also train the comparison networks many-image
    fusiongan_checkpoint: str | None = None  # None: the shipped FusionGAN
    compare_loss: str = "other"       # a second main-recipe model with this loss ("none": no)
    checkpoint: str | None = None     # stands in for the (images[0], seeds[0]) model
    many_checkpoint: str | None = None
    compare_checkpoint: str | None = None  # stands in for the second-loss model
    quick: bool = False               # a smoke run; without ``pairs`` it makes tiny pairs

    @classmethod
    def quick_defaults(cls, **overrides) -> "Settings":
        """The quick smoke run: tiny training, small crops, the 2 smallest pairs."""
        # no second-loss model unless a checkpoint is given: MS-SSIM needs 176 px, not 64
        base = dict(steps=3, many_steps=3, seeds=(0,), images=("camera",), size=64, crop=64,
                    max_pairs=2, montage_pairs=2, quick=True,
                    compare_loss="none" if overrides.get("compare_checkpoint") is None else "other")
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)

    @property
    def many_steps_(self) -> int:
        return self.steps if self.many_steps is None else self.many_steps

    @property
    def compare_loss_(self) -> str | None:
        """The loss of the second main-recipe model, or None: "other" is the loss not used."""
        if self.compare_loss == "none":
            return None
        if self.compare_loss == "other":
            return next(x for x in LOSSES if x != self.loss)
        return None if self.compare_loss == self.loss else self.compare_loss

    @property
    def network_baselines(self) -> tuple[str, ...]:
        """The comparison networks trained here like Res2NetFuse (DenseFuse, MSDNet)."""
        return tuple(b for b in self.baselines if b in NETWORK_BASELINES)

    @property
    def image0(self) -> str:
        """The main training image: the single-image model of Tables II–IV."""
        return self.images[0]

    @property
    def seed0(self) -> int:
        """The main seed: the single-image and many-image models of Tables II–IV."""
        return self.seeds[0]

    def validate(self) -> None:
        """Raises :class:`JaxfuseError` naming the first setting that is out of range."""
        from jaxfuse import datasets

        def bad(problem: str, *names: str, path=None):
            return JaxfuseError(path, problem, settings=names)

        for name, v in (("steps", self.steps), ("many_steps", self.many_steps_), ("size", self.size)):
            if v < 1:
                raise bad(f"{{{name}}} must be a positive integer, got {v}", name)
        if self.montage_pairs < 1:
            raise bad(f"montage_pairs must be a positive integer, got {self.montage_pairs}")
        if self.crop < 11:
            raise bad(f"{{crop}} {self.crop} is below the 11 pixels SSIM's window needs", "crop")
        if self.max_pairs is not None and self.max_pairs < 1:
            raise bad(f"{{max_pairs}} must be a positive integer, got {self.max_pairs}", "max_pairs")
        if not self.seeds:
            raise bad("{seeds} needs at least one seed", "seeds")
        if len(set(self.seeds)) != len(self.seeds) or len(set(self.images)) != len(self.images):
            raise bad("{seeds} and {images} must not repeat a value", "seeds", "images")
        if not self.images:
            raise bad("{images} needs at least one image", "images")
        for b in self.baselines:
            if b not in BASELINES:
                raise bad(f"{{baselines}} takes {', '.join(BASELINES)}, got {b!r}", "baselines")
        if self.compare_loss not in ("other", "none") + LOSSES:
            raise bad(f"{{compare_loss}} takes other, none, {', '.join(LOSSES)}, got "
                      f"{self.compare_loss!r}", "compare_loss")
        from jaxfuse import data
        if not self.many_images:
            raise bad("{many_images} needs at least one folder (or bundled)", "many_images")
        for src in self.many_images:
            if src != data.BUNDLED and not Path(src).is_dir():
                raise bad("is not a folder of training images (nor 'bundled')", path=src)
        if self.many_augment not in data.AUGMENTS:
            raise bad(f"{{many_augment}} takes {', '.join(data.AUGMENTS)}, got "
                      f"{self.many_augment!r}", "many_augment")
        for im in self.images:
            if im not in datasets.NATURAL_IMAGES and not Path(im).is_file():
                raise bad(f"not a file nor a bundled image ({', '.join(datasets.NATURAL_IMAGES)})",
                          path=im)


QUICK_PAIR_SIZES = ((64, 80), (72, 64), (64, 64))


def make_quick_pairs(folder: Path) -> Path:
    """Writes three small synthetic infrared/visible pairs into ``folder/ir``, ``folder/vis``.

    A warm blob on a noisy background (infrared) and a textured scene
    (visible), from a fixed seed: the same pixels every time, so a rerun
    reuses its fused images. Existing files are kept. Returns ``folder``.
    """
    from jaxfuse import io
    rng = np.random.default_rng(0)
    for k, (h, w) in enumerate(QUICK_PAIR_SIZES):
        y, x = np.mgrid[0:h, 0:w]
        ir = 40 + 150 * np.exp(-((y - h / 2) ** 2 + (x - w / 3) ** 2) / 80) + rng.normal(0, 5, (h, w))
        vis = 128 + 60 * np.sin(x / 5.0 + k) * np.cos(y / 7.0) + rng.normal(0, 8, (h, w))
        for sub, a in (("ir", ir), ("vis", vis)):
            path = folder / sub / f"p{k}.png"
            if not path.is_file():
                io.save_image(path, np.clip(a, 0, 255).astype(np.uint8))
    return folder
