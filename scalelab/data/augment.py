"""Batched augmentation and resizing on the training device (float NCHW tensors, one random draw per image).

Every function draws its random numbers from the ``torch.Generator`` it is given (on the generator's own
device, then moved to the batch's), so a run is repeatable from one seed whatever device trains.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from scalelab.errors import DataError

_PAD_MODES = {"zeros": "constant", "reflection": "reflect"}


def random_affine(
    x: Tensor,
    generator: torch.Generator,
    *,
    rotation: float = 15.0,
    shift: float = 0.1,
    zoom: float = 0.1,
    flip: bool = True,
    padding_mode: str = "reflection",
) -> Tensor:
    """Rotate, shift, zoom and flip each image by its own random amounts, as Keras' ImageDataGenerator does.

    Per image: an angle uniform in ``±rotation`` degrees; a shift uniform in ``±shift`` of the width and of the
    height; a zoom factor uniform in ``1 ± zoom`` for each axis independently (above 1 zooms out); a horizontal
    flip with probability 1/2 if ``flip``. It is all one ``affine_grid`` + ``grid_sample`` (bilinear) call.
    Pixels from outside the image are mirrored (``"reflection"``) by default, which adds no black corners a
    network could key on; ``"zeros"`` fills black and ``"border"`` repeats the edge (Keras' ``"nearest"``).
    """
    _check_batch(x)
    _check_setting("rotation", rotation, 0, 180)
    _check_setting("shift", shift, 0, 1)
    _check_setting("zoom", zoom, 0, 0.99)
    if padding_mode not in ("reflection", "zeros", "border"):
        raise DataError(f"padding_mode must be reflection, zeros or border, got {padding_mode!r}")
    n, _, h, w = x.shape
    u = _uniform(generator, (n, 6), x.device) * 2 - 1  # U(-1, 1)
    angle = u[:, 0] * math.radians(rotation)
    cos, sin = torch.cos(angle), torch.sin(angle)
    zx = (1 + u[:, 1] * zoom) * (torch.where(u[:, 2] < 0, -1.0, 1.0) if flip else 1.0)
    zy = 1 + u[:, 3] * zoom
    # theta maps output to input coordinates, normalised to [-1, 1] per axis; the W/H factors keep the
    # rotation a true rotation in pixel space for non-square images.
    theta = torch.stack(
        [
            torch.stack([cos * zx, -sin * zy * h / w, u[:, 4] * 2 * shift], dim=1),
            torch.stack([sin * zx * w / h, cos * zy, u[:, 5] * 2 * shift], dim=1),
        ],
        dim=1,
    ).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def random_crop_flip(
    x: Tensor, generator: torch.Generator, *, padding: int = 4, flip: bool = True, padding_mode: str = "zeros",
    flips: Tensor | None = None,
) -> Tensor:
    """Pad by ``padding`` pixels, cut a random crop of the original size, flip it horizontally half the time
    (or, given ``flips``, a boolean per image, exactly those images).

    The common cheap CIFAR recipe; done as one gather over the batch. ``padding_mode`` is ``"zeros"`` or
    ``"reflection"``.
    """
    _check_batch(x)
    if padding_mode not in _PAD_MODES:
        raise DataError(f"padding_mode must be zeros or reflection, got {padding_mode!r}")
    n, _, h, w = x.shape
    if not 0 <= padding < min(h, w):
        raise DataError(f"padding must be between 0 and {min(h, w) - 1} for {h}x{w} images, got {padding}")
    padded = F.pad(x, (padding,) * 4, mode=_PAD_MODES[padding_mode])
    u = _uniform(generator, (n, 3), x.device)
    top = (u[:, 0] * (2 * padding + 1)).long().clamp_max(2 * padding)
    left = (u[:, 1] * (2 * padding + 1)).long().clamp_max(2 * padding)
    cols = torch.arange(w, device=x.device).expand(n, w)
    if flips is not None:
        cols = torch.where(flips[:, None], w - 1 - cols, cols)
    elif flip:
        cols = torch.where((u[:, 2] < 0.5)[:, None], w - 1 - cols, cols)
    rows = top[:, None] + torch.arange(h, device=x.device)  # (N, H)
    cols = left[:, None] + cols  # (N, W)
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = padded[batch, :, rows[:, :, None], cols[:, None, :]]  # advanced indices first: (N, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


def resize_batch(x: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Resize a batch to ``size`` (square if an int) bilinearly, antialiased when shrinking."""
    _check_batch(x)
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if len(hw) != 2 or min(hw) < 1:
        raise DataError(f"resize size must be a positive int or (height, width), got {size!r}")
    if hw == tuple(x.shape[-2:]):
        return x
    shrinking = hw[0] < x.shape[-2] or hw[1] < x.shape[-1]
    return F.interpolate(x, size=hw, mode="bilinear", align_corners=False, antialias=shrinking)


def _uniform(generator: torch.Generator, shape: tuple[int, ...], device: torch.device) -> Tensor:
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


def _check_batch(x: Tensor) -> None:
    if x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"expected a float (N, C, H, W) batch, got {x.dtype} of shape {tuple(x.shape)}")


def _check_setting(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise DataError(f"augmentation {name} must be between {low} and {high}, got {value}")
