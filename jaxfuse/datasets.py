"""Natural images that ship with scikit-image, for training and evaluation.

No downloads: every image here is bundled in scikit-image's wheel. They serve
three purposes: the built-in training image (``camera``), the 20 images of
the reconstruction table (paper Table III used 20 MS-COCO images we do not
have), and the "many images" training set (augmented random crops of them),
standing in for the paper's 80 000 MS-COCO images.
"""

from __future__ import annotations

import numpy as np

from jaxfuse.color import luma

# 20 natural photographs (microscopy and astronomy included); synthetic
# images (checkerboard, logo, colorwheel, horse silhouette) are left out.
NATURAL_IMAGES = (
    "astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee", "coins",
    "grass", "gravel", "hubble_deep_field", "immunohistochemistry", "microaneurysms",
    "moon", "motorcycle_left", "motorcycle_right", "page", "retina", "rocket", "text",
)


def natural_image(name: str) -> np.ndarray:
    """One bundled image as ``(H, W)`` float32 in [0, 255] (BT.601 gray for RGB)."""
    from skimage import data
    if name not in NATURAL_IMAGES:
        raise ValueError(f"unknown bundled image {name!r}; choose from {', '.join(NATURAL_IMAGES)}")
    if name.startswith("motorcycle_"):
        left, right, _ = data.stereo_motorcycle()
        a = left if name.endswith("left") else right
    else:
        a = getattr(data, name)()
    a = np.asarray(a, np.float32)
    if a.ndim == 3:
        a = luma(a)
    return a.astype(np.float32)


def random_crops(images: list[np.ndarray], rng: np.random.Generator, batch: int,
                 size: int = 256) -> np.ndarray:
    """A batch of augmented crops, ``(batch, size, size, 1)`` float32.

    Each crop: a random image, a random scale in [0.5, 1] of its shorter side
    (so small images are upsampled instead of skipped), resized to ``size``
    bilinearly, then a random horizontal flip and a random 90° rotation.
    """
    from PIL import Image
    out = np.empty((batch, size, size, 1), np.float32)
    for b in range(batch):
        img = images[rng.integers(len(images))]
        h, w = img.shape
        side = max(8, int(min(h, w) * rng.uniform(0.5, 1.0)))
        y = rng.integers(0, h - side + 1)
        x = rng.integers(0, w - side + 1)
        crop = Image.fromarray(img[y:y + side, x:x + side], mode="F").resize((size, size), Image.BILINEAR)
        c = np.asarray(crop, np.float32)
        if rng.random() < 0.5:
            c = c[:, ::-1]
        c = np.rot90(c, k=int(rng.integers(4)))
        out[b, :, :, 0] = np.clip(c, 0, 255)
    return out
