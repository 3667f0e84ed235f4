"""Helpers for tests that change a prepared sequence's precision or device."""

from __future__ import annotations

import dataclasses

import torch


def as_double(prep):
    """Turn a prepared sequence's float tensors into float64 in place (for gradient checks); returns it."""
    prep.adjacency = [a.double() for a in prep.adjacency]
    if isinstance(prep.features, torch.Tensor):
        prep.features = prep.features.double()
    elif isinstance(prep.features, list):
        prep.features = [f.double() for f in prep.features]
    return prep


def moved(prep, device):
    """A copy of a prepared sequence with every tensor on ``device``."""
    device = torch.device(device)

    def move(value):
        if isinstance(value, torch.Tensor) or hasattr(value, "to"):
            return value.to(device)
        if isinstance(value, list):
            return [move(v) for v in value]
        return value

    changes = {f.name: move(getattr(prep, f.name)) for f in dataclasses.fields(prep)}
    changes["device"] = device
    changes["derived"] = {}  # tensors derived on the old device are derived again on the new one
    return dataclasses.replace(prep, **changes)
