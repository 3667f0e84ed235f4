"""Estimator registry: named connectivity measures, their defaults, and the checks on what they return."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..spiketrains import SpikeTrains
from ..windows import Windows

__all__ = ["register_estimator", "available_methods", "get_estimator", "BACKENDS"]

BACKENDS = ("fast", "elephant")
_RESERVED = ("spikes", "windows", "verbose", "backend", "method", "check_spike_times")


@dataclass(frozen=True)
class Estimator:
    """A registered estimator: the fast function, the optional Elephant one, and the parameter defaults."""

    name: str
    function: Callable
    elephant_function: Callable | None
    defaults: dict
    symmetric_by_construction: bool = False

    def resolve(self, params: dict) -> dict:
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise TypeError(
                f"Unknown parameter(s) {unknown} for method {self.name!r}; it accepts {sorted(self.defaults)}."
            )
        empty = inspect.Parameter.empty
        missing = [key for key, value in self.defaults.items() if value is empty and key not in params]
        if missing:
            raise TypeError(f"Method {self.name!r} needs parameter(s) {missing}.")
        return {**self.defaults, **params}


_REGISTRY: dict[str, Estimator] = {}


def _defaults(function: Callable) -> dict:
    signature = inspect.signature(function)
    names = list(signature.parameters)
    if names[:2] != ["spikes", "windows"]:
        raise TypeError(
            f"An estimator must be a function (spikes, windows, verbose=True, **params); {function!r} has "
            f"parameters {names}."
        )
    if "verbose" not in signature.parameters:
        raise TypeError(f"An estimator must accept a 'verbose' argument; {function!r} does not.")
    return {
        name: parameter.default
        for name, parameter in signature.parameters.items()
        if name not in _RESERVED
        and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    }


def register_estimator(
    name: str,
    function: Callable,
    elephant_function: Callable | None = None,
    overwrite: bool = False,
    *,
    _symmetric_by_construction: bool = False,
) -> None:
    """Make an estimator available to :func:`compute_connectivity` under ``method=name``.

    Parameters
    ----------
    name : str
        Method name.
    function : callable
        ``function(spikes, windows, verbose=True, **params)`` returning the matrices, a float array
        ``(n_windows, n_units, n_units)``, symmetric and finite, or a tuple ``(matrices, extra)`` where ``extra``
        is a dict that may hold ``"lags_ms"`` (other keys are ignored). ``spikes`` is a
        :class:`~spikeinterface_tavrnn.SpikeTrains`, ``windows`` a :class:`~spikeinterface_tavrnn.Windows` already
        checked to lie inside the recording. Its keyword parameters, with their defaults, are the method's
        parameters and are recorded in ``ConnectivitySequence.params`` (keep them JSON-able).
    elephant_function : callable or None, default: None
        The same measure computed through Elephant, used with ``backend="elephant"``; same signature.
    overwrite : bool, default: False
        Replace an estimator already registered under ``name`` (otherwise an error).

    Examples
    --------
    >>> import numpy as np
    >>> from spikeinterface_tavrnn import SpikeTrains, compute_connectivity, register_estimator
    >>> def rate_product(spikes, windows, verbose=True, scale=1.0):
    ...     counts = np.array([[np.sum((t >= a * spikes.sampling_frequency) & (t < b * spikes.sampling_frequency))
    ...                         for t in spikes.spike_samples] for a, b in zip(windows.starts, windows.stops)])
    ...     return scale * counts[:, :, None] * counts[:, None, :]
    >>> register_estimator("rate_product", rate_product, overwrite=True)
    >>> spikes = SpikeTrains.from_arrays([np.array([0.1, 0.2]), np.array([0.5])], t_start=0, t_stop=1.0)
    >>> compute_connectivity(spikes, None, method="rate_product", verbose=False).matrices[0].tolist()
    [[4.0, 2.0], [2.0, 1.0]]
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, got {name!r}.")
    if not callable(function):
        raise TypeError(f"function must be callable, got {function!r}.")
    if elephant_function is not None and not callable(elephant_function):
        raise TypeError(f"elephant_function must be callable or None, got {elephant_function!r}.")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"An estimator {name!r} is already registered; pass overwrite=True to replace it.")
    defaults = _defaults(function)
    if elephant_function is not None:
        elephant_defaults = _defaults(elephant_function)
        if elephant_defaults != defaults:
            raise ValueError(
                f"The fast and Elephant functions of {name!r} must have the same parameters and defaults: "
                f"{defaults} vs {elephant_defaults}."
            )
    _REGISTRY[name] = Estimator(name, function, elephant_function, defaults, _symmetric_by_construction)


def available_methods(backend: str | None = None) -> list[str]:
    """Names of the registered estimators (those with an Elephant version when ``backend="elephant"``)."""
    if backend not in (None,) + BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS} or None, got {backend!r}.")
    return sorted(name for name, est in _REGISTRY.items() if backend != "elephant" or est.elephant_function)


def get_estimator(method: str) -> Estimator:
    if method not in _REGISTRY:
        raise ValueError(f"Unknown connectivity method {method!r}; available: {available_methods()}.")
    return _REGISTRY[method]


def as_spike_trains(spikes: Any) -> SpikeTrains:
    """A SpikeTrains from a SpikeTrains, a SpikeInterface sorting or analyzer, or Neo spike trains."""
    if isinstance(spikes, SpikeTrains):
        return spikes
    if hasattr(spikes, "get_unit_ids") or hasattr(spikes, "get_extension"):
        return SpikeTrains.from_sorting(spikes)
    try:
        import neo

        if isinstance(spikes, (neo.Block, neo.Segment)) or (
            isinstance(spikes, (list, tuple)) and spikes and all(isinstance(s, neo.SpikeTrain) for s in spikes)
        ):
            return SpikeTrains.from_neo(spikes)
    except ImportError:  # pragma: no cover - neo is a dependency
        pass
    raise TypeError(
        f"spikes must be a SpikeTrains, a SpikeInterface BaseSorting or SortingAnalyzer, or Neo spike trains; "
        f"got {type(spikes).__name__}."
    )


def as_windows(windows: Any, spikes: SpikeTrains) -> Windows:
    """Windows from a Windows, None (one window over the whole recording), or an object with starts/stops."""
    if windows is None:
        return Windows(np.array([spikes.t_start_s]), np.array([spikes.t_stop_s]))
    if isinstance(windows, Windows):
        return windows
    if hasattr(windows, "starts") and hasattr(windows, "stops"):
        return Windows(windows.starts, windows.stops, getattr(windows, "labels", None))
    raise TypeError(f"windows must be a Windows (see sliding_windows) or None, got {type(windows).__name__}.")


def run_estimator(
    estimator: Estimator, spikes: SpikeTrains, windows: Windows, params: dict, backend: str, verbose: bool
) -> tuple[np.ndarray, dict]:
    """Call an estimator with resolved params and validate its output."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    function = estimator.function
    if backend == "elephant":
        if estimator.elephant_function is None:
            raise ValueError(
                f"Method {estimator.name!r} has no Elephant backend; methods with one: "
                f"{available_methods('elephant')}."
            )
        function = estimator.elephant_function
    result = function(spikes, windows, verbose=verbose, **params)
    matrices, extra = result if isinstance(result, tuple) else (result, {})
    matrices = np.asarray(matrices)
    expected = (len(windows), spikes.num_units, spikes.num_units)
    if matrices.shape != expected:
        raise ValueError(f"Estimator {estimator.name!r} returned shape {matrices.shape}, expected {expected}.")
    for t, matrix in enumerate(matrices):  # one window at a time: no temporary as large as the output
        if not np.all(np.isfinite(matrix)):
            raise ValueError(
                f"Estimator {estimator.name!r} returned NaN or infinite values (window {t}); an estimator must "
                "define every value (e.g. 0 for pairs with a silent unit)."
            )
        if estimator.symmetric_by_construction:  # built-ins write (a, b) and (b, a) together; tested
            continue
        asymmetry = float(np.max(np.abs(matrix - matrix.T))) if matrix.size else 0.0
        if asymmetry > 1e-6 * max(1.0, float(np.max(np.abs(matrix)))):
            raise ValueError(
                f"Estimator {estimator.name!r} returned a non-symmetric matrix in window {t} (max asymmetry "
                f"{asymmetry})."
            )
    return matrices, dict(extra or {})
