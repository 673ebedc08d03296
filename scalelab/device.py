"""Choosing the compute device: passed in explicitly everywhere, never global."""

from __future__ import annotations

import torch

from scalelab.errors import ScalelabError


def pick_device(name: str = "auto") -> torch.device:
    """'auto' (CUDA when present, else CPU), 'cpu', 'cuda' or 'cuda:N'."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ScalelabError(f"unknown device '{name}'; use auto, cpu or cuda") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ScalelabError("device 'cuda' was asked for but no CUDA GPU is visible; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise ScalelabError(f"device '{name}' is not supported; use auto, cpu or cuda")
    return device
