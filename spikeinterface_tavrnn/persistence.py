"""Saving and loading fitted :class:`~spikeinterface_tavrnn.estimator.TAVRNN` models.

A model file is a NumPy ``.npz`` archive (no pickle) holding ``__meta__`` (a JSON string: format version, package
and torch versions, constructor parameters, fitted sizes) and plain arrays (``state.<name>`` weights,
``loss_history``, ``attention_weights``, array ``node_features``, structural scaler). Files are written beside the
target and renamed over it, so a failed write leaves the previous file intact. Damaged files, files of another
format version and files with non-finite weights are refused with a
:class:`~spikeinterface_tavrnn.errors.TavrnnInputError` naming the problem.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import TavrnnInputError
from .fileio import write_bytes_atomic

if TYPE_CHECKING:
    import torch


__all__ = ["FORMAT_VERSION", "get_state", "from_state", "save", "load"]

#: Version of the file / state layout written by :func:`save` and :func:`get_state`.
FORMAT_VERSION = 1


def get_state(estimator: Any) -> tuple[dict, dict]:
    """A fitted estimator as plain data: JSON-able parameters and numpy arrays (see ``TAVRNN.get_state``)."""
    import torch

    from . import __version__

    params = estimator.get_params()
    arrays: dict[str, np.ndarray] = {}
    if not isinstance(params["node_features"], str):
        arrays["node_features"] = np.asarray(params["node_features"], dtype=np.float32)
        params["node_features"] = "array"
    params["device"] = str(params["device"])
    names = getattr(estimator, "structural_features_", None)
    meta = {
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "torch_version": torch.__version__,
        "params": params,
        "fitted": {
            "n_features_in": estimator.n_features_in_,
            "n_nodes": estimator.n_nodes_,
            "n_windows": estimator.n_windows_,
            "feature_kind": estimator.feature_kind_,
            "reconstruction": estimator.reconstruction_,
            "seed": estimator.seed_,
            "n_epochs": estimator.n_epochs_,
            "n_recordings": getattr(estimator, "n_recordings_", 1),
            "structural_features": list(names or []),
        },
    }
    for name, tensor in estimator.module_.state_dict().items():
        arrays[f"state.{name}"] = tensor.detach().cpu().numpy()
    arrays["loss_history"] = estimator.loss_history_
    if isinstance(estimator.attention_weights_, list):
        for index, weights in enumerate(estimator.attention_weights_):
            arrays[f"attention_weights.{index}"] = weights
    elif estimator.attention_weights_ is not None:
        arrays["attention_weights"] = estimator.attention_weights_
    if names:
        arrays["structural_mean"] = estimator.structural_mean_
        arrays["structural_scale"] = estimator.structural_scale_
    return meta, arrays


def _refuse(source: str, problem: str) -> TavrnnInputError:
    return TavrnnInputError(f"{source} {problem}; re-fit the model and save it again (TAVRNN.save).")


def from_state(
    cls: type, params: dict, arrays: dict, device: "str | torch.device | None" = None, source: str = "the state"
) -> Any:
    """Rebuild a fitted estimator of class ``cls`` from :func:`get_state` output (see ``TAVRNN.from_state``)."""
    import torch

    from .training import build_module, resolve_device

    if not isinstance(params, dict):
        raise _refuse(source, "holds no TAVRNN metadata")
    version = params.get("format_version")
    if version != FORMAT_VERSION:
        raise TavrnnInputError(
            f"cannot read {source}: TAVRNN format version {version!r} (written by spikeinterface_tavrnn "
            f"{params.get('package_version', 'unknown')}); this version reads format {FORMAT_VERSION}. Install the "
            "package version that wrote it, or re-fit."
        )
    try:
        ctor = dict(params["params"])
        ctor.setdefault("train_recurrence", True)  # files written before the option trained the recurrence
        ctor.setdefault("decoder", "inner_product")  # files written before the option used the inner product
        ctor.setdefault("edge_dropout", 0.0)  # files written before the option trained on whole graphs
        fitted = params["fitted"]
        if ctor.get("node_features") == "array":
            ctor["node_features"] = np.asarray(arrays["node_features"])
        est = cls(**ctor)
        cfg = est._config()
        kind = fitted["feature_kind"]
        n_features = int(fitted["n_features_in"])
        loss_history = np.asarray(arrays["loss_history"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, TavrnnInputError):
            raise
        raise _refuse(source, f"is incomplete or damaged ({type(err).__name__}: {err})") from err
    target = resolve_device(device if device is not None else cfg["device"])
    if target.type == "cuda" and not torch.cuda.is_available():
        target = torch.device("cpu")
    module = build_module(cfg, n_features, kind)
    prefix = "state."
    state = {}
    for key, value in arrays.items():
        if key.startswith(prefix):
            value = np.array(value)
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise _refuse(source, f"holds non-finite weights ({key[len(prefix):]})")
            state[key[len(prefix) :]] = torch.from_numpy(value)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise _refuse(source, f"has weights that do not match its parameters ({' '.join(first[:2])})") from err
    est.module_ = module.to(target).eval()
    est.device_ = target
    est.loss_history_ = loss_history
    aw = arrays.get("attention_weights")
    est.attention_weights_ = None if aw is None else np.asarray(aw, dtype=np.float64)
    try:
        n_recordings = int(fitted.get("n_recordings", 1))
        if aw is None and "attention_weights.0" in arrays:
            est.attention_weights_ = [
                np.asarray(arrays[f"attention_weights.{i}"], dtype=np.float64) for i in range(n_recordings)
            ]
        est.n_recordings_ = n_recordings
        est.n_features_in_ = n_features
        est.n_nodes_ = fitted["n_nodes"] if isinstance(fitted["n_nodes"], list) else int(fitted["n_nodes"])
        est.n_windows_ = fitted["n_windows"] if isinstance(fitted["n_windows"], list) else int(fitted["n_windows"])
        names = fitted.get("structural_features") or []
        est.structural_features_ = tuple(names) if names else None
        if names:
            est.structural_mean_ = np.asarray(arrays["structural_mean"], dtype=np.float32)
            est.structural_scale_ = np.asarray(arrays["structural_scale"], dtype=np.float32)
        est.feature_kind_ = kind
        est.reconstruction_ = fitted["reconstruction"]
        est.seed_ = int(fitted["seed"])
        est.n_epochs_ = int(fitted["n_epochs"])
    except (KeyError, TypeError, ValueError) as err:
        raise _refuse(source, f"is incomplete or damaged ({type(err).__name__}: {err})") from err
    est._fit_array = None if "node_features" not in arrays else np.asarray(arrays["node_features"])
    return est


def save(estimator: Any, path: str | os.PathLike) -> None:
    """Write a fitted estimator to ``path`` (``.npz``, no pickle), beside then renamed over the target."""
    meta, arrays = get_state(estimator)
    payload: dict[str, Any] = {"__meta__": np.array(json.dumps(meta))}
    payload.update(arrays)
    buffer = io.BytesIO()
    np.savez(buffer, **payload)
    write_bytes_atomic(path, buffer.getvalue())


def load(cls: type, path: str | os.PathLike, device: "str | torch.device | None" = None) -> Any:
    """Read a model written by :func:`save` into an estimator of class ``cls``."""
    source = repr(os.fspath(path))
    if not os.path.isfile(path):
        raise TavrnnInputError(f"model file {source} does not exist or is not a file; give the path TAVRNN.save wrote.")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise _refuse(source, f"is not a readable TAVRNN model file ({type(err).__name__}: {err})") from err
    if "__meta__" not in arrays:
        raise _refuse(source, "is not a TAVRNN model file (no __meta__ entry)")
    try:
        meta = json.loads(str(arrays.pop("__meta__")))
    except ValueError as err:
        raise _refuse(source, f"has damaged metadata ({err})") from err
    return from_state(cls, meta, arrays, device=device, source=source)
