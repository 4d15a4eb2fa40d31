"""Training augmentations as plain NumPy functions on batches of grey crops in [0, 1].

One random affine warp per image (rotation, scale, shift, horizontal flip), then
brightness and contrast, then random erasing; all drawn from the given generator,
so a seed reproduces a run.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    max_rotation_degrees: float = 12.0
    scale_range: tuple[float, float] = (0.88, 1.12)
    max_shift_fraction: float = 0.08
    flip: bool = True
    brightness: float = 0.15
    contrast: float = 0.3
    erase_probability: float = 0.4
    erase_area: tuple[float, float] = (0.04, 0.2)


def random_affine(images: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Warp each (H, W) image by its own rotation, scale, shift and flip, bilinear, edges replicated."""
    count, height, width = images.shape
    angles = np.deg2rad(rng.uniform(-config.max_rotation_degrees, config.max_rotation_degrees, count))
    scales = rng.uniform(*config.scale_range, count)
    shifts = rng.uniform(-config.max_shift_fraction, config.max_shift_fraction, (count, 2)) * (height, width)
    flips = rng.random(count) < 0.5 if config.flip else np.zeros(count, bool)

    center_y, center_x = (height - 1) / 2, (width - 1) / 2
    out_y, out_x = np.meshgrid(np.arange(height) - center_y, np.arange(width) - center_x, indexing="ij")
    out_x = np.where(flips[:, None, None], -out_x, out_x)  # (N, H, W)
    cos, sin = (np.cos(angles) / scales)[:, None, None], (np.sin(angles) / scales)[:, None, None]
    # Each output pixel samples the source at the inverse-transformed position.
    source_x = cos * out_x - sin * out_y + center_x + shifts[:, 1, None, None]
    source_y = sin * out_x + cos * out_y + center_y + shifts[:, 0, None, None]
    source_x = np.clip(source_x, 0, width - 1)
    source_y = np.clip(source_y, 0, height - 1)

    x0 = np.minimum(source_x.astype(np.int64), width - 2)
    y0 = np.minimum(source_y.astype(np.int64), height - 2)
    fx, fy = source_x - x0, source_y - y0
    index = np.arange(count)[:, None, None]
    top = images[index, y0, x0] * (1 - fx) + images[index, y0, x0 + 1] * fx
    bottom = images[index, y0 + 1, x0] * (1 - fx) + images[index, y0 + 1, x0 + 1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def random_brightness_contrast(images: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    count = len(images)
    contrast = rng.uniform(1 - config.contrast, 1 + config.contrast, count)[:, None, None]
    brightness = rng.uniform(-config.brightness, config.brightness, count)[:, None, None]
    means = images.mean(axis=(1, 2), keepdims=True)
    return np.clip((images - means) * contrast + means + brightness, 0.0, 1.0)


def random_erase(images: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Blank one random rectangle in some images (random erasing, Zhong et al. 2017) with noise."""
    images = images.copy()
    count, height, width = images.shape
    for index in np.flatnonzero(rng.random(count) < config.erase_probability):
        area = rng.uniform(*config.erase_area) * height * width
        aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0)))
        erase_h = min(height, int(round(np.sqrt(area * aspect))))
        erase_w = min(width, int(round(np.sqrt(area / aspect))))
        top = rng.integers(0, height - erase_h + 1)
        left = rng.integers(0, width - erase_w + 1)
        images[index, top : top + erase_h, left : left + erase_w] = rng.random((erase_h, erase_w))
    return images


def augment_batch(images: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """uint8 (N, H, W) crops in, augmented float32 (N, H, W) in [0, 1] out."""
    warped = random_affine(images.astype(np.float32) / 255.0, rng, config)
    return random_erase(random_brightness_contrast(warped, rng, config), rng, config).astype(np.float32)
