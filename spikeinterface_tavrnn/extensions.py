"""The ``functional_connectivity`` and ``tavrnn_embeddings`` extensions of SpikeInterface's ``SortingAnalyzer``.

Importing :mod:`spikeinterface_tavrnn` registers both. Their data are plain arrays and JSON dictionaries, so
they save and reload in the memory, binary_folder and zarr formats without pickles.

Curation
--------
* ``select_units`` / ``remove_units``: both extensions are sliced to the kept units (connectivity values and
  embeddings of a unit do not change when other units are dropped from the table; the model was trained with
  them present, which ``params`` and the stored graph record).
* ``merge_units`` / ``split_units``: connectivity is recomputed exactly from the new spike trains with the same
  parameters. Embeddings cannot be carried over to units that did not exist when the model was trained: rows of
  new units are NaN and the extension is marked stale; :meth:`ComputeTAVRNNEmbeddings.get_data` then warns, and
  ``analyzer.compute("tavrnn_embeddings", ...)`` recomputes it.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np

import spikeinterface.postprocessing  # noqa: F401  (registers built-in extensions before ours depends on them)
from spikeinterface.core.sortinganalyzer import AnalyzerExtension, register_result_extension

from .connectivity import compute_connectivity
from .defaults import ParamsWithSignature, model_defaults, signature_defaults
from .errors import TavrnnInputError
from .spiketrains import SpikeTrains

_CONNECTIVITY_DEFAULTS = signature_defaults(compute_connectivity)
_SEGMENT_DEFAULT = signature_defaults(SpikeTrains.from_sorting)["segment_index"]
#: Whether spike times are checked for plausibility (owner: ``compute_connectivity`` once it takes the parameter).
_CHECK_SPIKE_TIMES_DEFAULT = _CONNECTIVITY_DEFAULTS.get("check_spike_times", True)
#: Parameters of the embeddings extension besides the model's.
_EMBEDDING_EXTRA_DEFAULTS = {"score_links": False, "model_path": None}

#: Version of the data layout of both extensions; bumped when a saved analyzer would be read wrongly.
DATA_FORMAT_VERSION = 1
#: Name of the connectivity extension (``analyzer.compute(CONNECTIVITY_EXTENSION, ...)``).
CONNECTIVITY_EXTENSION = "functional_connectivity"
#: Name of the embeddings extension.
EMBEDDINGS_EXTENSION = "tavrnn_embeddings"
EXTENSION_NAMES = (CONNECTIVITY_EXTENSION, EMBEDDINGS_EXTENSION)

_STALE_MESSAGE = (
    "The tavrnn_embeddings of this analyzer are stale: units were merged or split after training, so new units have "
    "NaN embeddings. Recompute with analyzer.compute('tavrnn_embeddings', ...)."
)


def _version_info() -> dict:
    from . import __version__

    return {"package_version": __version__, "data_format_version": DATA_FORMAT_VERSION}


def _check_version_info(extension: AnalyzerExtension) -> None:
    info = extension.data.get("format_info")
    version = None if info is None else int(info.get("data_format_version", -1))
    if version != DATA_FORMAT_VERSION:
        saved_by = None if info is None else info.get("package_version")
        from . import __version__

        raise ValueError(
            f"The {extension.extension_name!r} extension of this analyzer was saved by spikeinterface_tavrnn "
            f"{saved_by or 'unknown version'} in data format {version}; this is {__version__}, which reads format "
            f"{DATA_FORMAT_VERSION}. Recompute it (analyzer.compute({extension.extension_name!r}, ...)) or install "
            f"spikeinterface_tavrnn=={saved_by}."
        )


def edge_density_from_offsets(edge_offsets, n_units: int) -> np.ndarray:
    """Edge density per window from cumulative edge counts (``(n_windows + 1,)``, both directions stored).

    The density is ``n_directed_edges / (n_units * (n_units - 1))``, in [0, 1] (NaN with fewer than two units).
    """
    counts = np.diff(np.asarray(edge_offsets, dtype=np.int64)).astype(np.float64)
    pairs = n_units * (n_units - 1)
    return counts / pairs if pairs > 0 else np.full(counts.shape, np.nan)


def _window_rates_hz(spikes, windows) -> np.ndarray:
    from .connectivity.binning import window_spike_counts

    return window_spike_counts(spikes, windows) / (windows.stops - windows.starts)[:, None]


def _unit_indices(analyzer, unit_ids) -> np.ndarray:
    return np.asarray(analyzer.sorting.ids_to_indices(unit_ids), dtype=np.int64)


def _flatten_edges(graphs) -> dict[str, np.ndarray]:
    edge_counts = np.array([graphs.edge_index(t).shape[1] for t in range(len(graphs))], dtype=np.int64)
    offsets = np.zeros(len(graphs) + 1, dtype=np.int64)
    np.cumsum(edge_counts, out=offsets[1:])
    if offsets[-1]:
        edge_index = np.concatenate([graphs.edge_index(t) for t in range(len(graphs))], axis=1).astype(np.int64)
        edge_weight = np.concatenate([graphs.edge_weight(t) for t in range(len(graphs))]).astype(np.float32)
    else:
        edge_index, edge_weight = np.zeros((2, 0), dtype=np.int64), np.zeros(0, dtype=np.float32)
    return {"edge_index": edge_index, "edge_weight": edge_weight, "edge_offsets": offsets}


def _select_edges(data: dict, keep_indices: np.ndarray, n_units_before: int) -> dict[str, np.ndarray]:
    new_index = np.full(n_units_before, -1, dtype=np.int64)
    new_index[keep_indices] = np.arange(keep_indices.size)
    edge_index, offsets = np.asarray(data["edge_index"]), np.asarray(data["edge_offsets"])
    kept = (new_index[edge_index[0]] >= 0) & (new_index[edge_index[1]] >= 0)
    window_of_edge = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
    new_offsets = np.zeros_like(offsets)
    np.cumsum(np.bincount(window_of_edge[kept], minlength=offsets.size - 1), out=new_offsets[1:])
    return {
        "edge_index": new_index[edge_index[:, kept]],
        "edge_weight": np.asarray(data["edge_weight"])[kept],
        "edge_offsets": new_offsets,
    }


class ComputeFunctionalConnectivity(AnalyzerExtension):
    """Functional connectivity of all unit pairs per time window, and the graph sequence thresholded from it.

    Parameters
    ----------
    method : str, default: that of ``compute_connectivity`` ("sttc")
        A registered estimator: "sttc" (spike time tiling coefficient), "pearson" (binned correlation),
        "crosscorr" (peak normalised cross-correlation), or one added with ``register_estimator``.
    window_s : float or None, default: 120.0
        Sliding window length in seconds; None for one window over the whole segment.
    step_s : float or None, default: 60.0
        Step between sliding windows in seconds (``window_s`` when None).
    window_starts_s, window_stops_s : list of float or None, default: None
        Behaviour-aligned windows (trials, visits, epochs) in seconds; replace the sliding windows when given.
    window_labels : list or None, default: None
        One label per behaviour-aligned window.
    dt_ms : float or None, default: None
        Coincidence window of "sttc" in milliseconds (None: the estimator's default, 5 ms).
    bin_ms : float or None, default: None
        Bin width of "pearson" and "crosscorr" in milliseconds (None: their defaults, 50 ms and 1 ms).
    binary : bool or None, default: None
        "pearson" and "crosscorr": clip bin counts to 0/1 (None: the default, True, as in the TAVRNN paper).
    max_lag_ms : float or None, default: None
        "crosscorr": largest lag searched for the peak, in milliseconds (None: its default, 10 ms).
    method_kwargs : dict or None, default: None
        Further parameters of the estimator (for estimators added by users).
    backend : "fast" | "elephant", default: "fast"
        Compute with this package's kernels or through Elephant's functions (slow; for cross-checks).
    threshold : float or None, default: None
        Keep edges with ``|value| >= threshold`` (then ``density`` is not used).
    density : float or None, default: 0.1
        Keep this fraction of the strongest unit pairs in each window; used when neither ``threshold`` nor
        ``significance`` is given.
    significance : float or None, default: None
        Keep pairs whose value beats spike-jitter surrogates at this level (alpha).
    jitter_ms : float, default: 10.0
        Surrogate spike jitter (uniform within +-jitter_ms), with ``significance``.
    n_surrogates : int, default: 99
        Number of surrogates, with ``significance``.
    seed : int or None, default: 0
        Seed of the surrogates.
    segment_index : int, default: that of ``SpikeTrains.from_sorting``
        Segment to analyse.
    label_property : str or None, default: "auto"
        Sorting property with unit labels (region, well), as in ``SpikeTrains.from_sorting``.
    check_spike_times : bool, default: that of ``compute_connectivity`` (True)
        Refuse implausible spike times (a spike far beyond the others, times that look like milliseconds) before
        computing; False to override.

    Returns
    -------
    matrices : np.ndarray
        ``(n_windows, n_units, n_units)`` float32, symmetric, unthresholded (``get_data()``).
    """

    extension_name = CONNECTIVITY_EXTENSION
    depend_on = []
    need_recording = False
    use_nodepipeline = False
    need_job_kwargs = False
    need_backward_compatibility_on_load = True

    def _set_params(
        self,
        method: str = _CONNECTIVITY_DEFAULTS["method"],
        window_s: float | None = 120.0,
        step_s: float | None = 60.0,
        window_starts_s: list | None = None,
        window_stops_s: list | None = None,
        window_labels: list | None = None,
        dt_ms: float | None = None,
        bin_ms: float | None = None,
        binary: bool | None = None,
        max_lag_ms: float | None = None,
        method_kwargs: dict | None = None,
        backend: str = _CONNECTIVITY_DEFAULTS["backend"],
        threshold: float | None = None,
        density: float | None = 0.1,
        significance: float | None = None,
        jitter_ms: float = 10.0,
        n_surrogates: int = 99,
        seed: int | None = 0,
        segment_index: int | None = _SEGMENT_DEFAULT,
        label_property: str | None = "auto",
        check_spike_times: bool = _CHECK_SPIKE_TIMES_DEFAULT,
    ) -> dict:
        from .connectivity import available_methods

        if method not in available_methods():
            raise TavrnnInputError(f"unknown connectivity method {method!r}; available: {available_methods()}")
        if (window_starts_s is None) != (window_stops_s is None):
            raise TavrnnInputError("give both window_starts_s and window_stops_s for behaviour-aligned windows")
        if threshold is not None and significance is not None:
            raise TavrnnInputError("give one edge rule: threshold, density or significance, not both threshold and significance")
        if threshold is not None or significance is not None:
            density = None  # the density default applies only when no other rule is given
        if threshold is None and density is None and significance is None:
            raise TavrnnInputError("give one edge rule: threshold, density or significance")
        as_list = lambda values: None if values is None else np.asarray(values).tolist()  # noqa: E731
        return dict(
            method=method,
            window_s=window_s,
            step_s=step_s,
            window_starts_s=as_list(window_starts_s),
            window_stops_s=as_list(window_stops_s),
            window_labels=as_list(window_labels),
            dt_ms=None if dt_ms is None else float(dt_ms),
            bin_ms=None if bin_ms is None else float(bin_ms),
            binary=None if binary is None else bool(binary),
            max_lag_ms=None if max_lag_ms is None else float(max_lag_ms),
            method_kwargs=dict(method_kwargs or {}),
            backend=backend,
            threshold=threshold,
            density=density,
            significance=significance,
            jitter_ms=float(jitter_ms),
            n_surrogates=int(n_surrogates),
            seed=seed,
            segment_index=segment_index if segment_index is None or isinstance(segment_index, str) else int(segment_index),
            label_property=label_property,
            check_spike_times=bool(check_spike_times),
        )

    # -------------------------------------------------------------- computing
    def _windows(self, spikes):
        from .windows import sliding_windows, windows_from_intervals

        p = self.params
        if p["window_starts_s"] is not None:
            windows = windows_from_intervals(p["window_starts_s"], p["window_stops_s"], p["window_labels"])
        elif p["window_s"] is None:
            windows = windows_from_intervals([spikes.t_start_s], [spikes.t_stop_s])
        else:
            windows = sliding_windows(spikes.t_start_s, spikes.t_stop_s, p["window_s"], p["step_s"])
        windows.check_within(spikes.t_start_s, spikes.t_stop_s)
        return windows

    def _method_params(self) -> dict:
        """The estimator's parameters: the shared ones it accepts and that were given, plus ``method_kwargs``."""
        from .connectivity.registry import get_estimator

        p = self.params
        accepted = get_estimator(p["method"]).defaults
        shared = {key: p[key] for key in ("dt_ms", "bin_ms", "binary", "max_lag_ms") if key in accepted}
        return {**{k: v for k, v in shared.items() if v is not None}, **p["method_kwargs"]}

    def _compute(self, sorting_analyzer, verbose: bool) -> dict:
        from .connectivity import compute_connectivity
        from .spiketrains import SpikeTrains

        p = self.params
        spikes = SpikeTrains.from_sorting(
            sorting_analyzer, segment_index=p["segment_index"], label_property=p["label_property"], duplicates="keep"
        )
        windows = self._windows(spikes)
        checks = {}
        if "check_spike_times" in _CONNECTIVITY_DEFAULTS:
            checks["check_spike_times"] = p.get("check_spike_times", _CHECK_SPIKE_TIMES_DEFAULT)
        sequence = compute_connectivity(
            spikes, windows, method=p["method"], backend=p["backend"], verbose=verbose, **checks, **self._method_params()
        )
        graphs = sequence.to_graphs(
            threshold=p["threshold"],
            density=p["density"],
            significance=p["significance"],
            jitter_ms=p["jitter_ms"],
            n_surrogates=p["n_surrogates"],
            seed=p["seed"],
            verbose=verbose,
        )
        data = {
            "matrices": np.asarray(sequence.matrices, dtype=np.float32),
            "firing_rates_hz": _window_rates_hz(spikes, windows),
            "window_starts": windows.starts,
            "window_stops": windows.stops,
            **_flatten_edges(graphs),
            "format_info": _version_info(),
        }
        if windows.labels is not None:
            data["window_labels"] = np.asarray(windows.labels)
        if getattr(sequence, "lags_ms", None) is not None:
            data["lags_ms"] = np.asarray(sequence.lags_ms, dtype=np.float32)
        return data

    def _run(self, verbose: bool = False, **job_kwargs) -> None:
        self.data = self._compute(self.sorting_analyzer, verbose)

    def _handle_backward_compatibility_on_load(self) -> None:
        _check_version_info(self)

    # -------------------------------------------------------------- curation
    def _select_units_extension_data(self, unit_ids) -> dict:
        keep = _unit_indices(self.sorting_analyzer, unit_ids)
        n_before = self.sorting_analyzer.get_num_units()
        new_data = {key: value for key, value in self.data.items()}
        new_data["matrices"] = np.asarray(self.data["matrices"])[:, keep][:, :, keep]
        if "firing_rates_hz" in self.data:
            new_data["firing_rates_hz"] = np.asarray(self.data["firing_rates_hz"])[:, keep]
        if "lags_ms" in self.data:
            new_data["lags_ms"] = np.asarray(self.data["lags_ms"])[:, keep][:, :, keep]
        new_data.update(_select_edges(self.data, keep, n_before))
        return new_data

    _select_extension_data = _select_units_extension_data  # name used by spikeinterface < 0.105

    def _merge_extension_data(
        self, merge_unit_groups, new_unit_ids, new_sorting_analyzer, keep_mask=None, verbose=False, **job_kwargs
    ) -> dict:
        return self._compute(new_sorting_analyzer, verbose)

    def _split_extension_data(self, split_units, new_unit_ids, new_sorting_analyzer, verbose=False, **job_kwargs):
        return self._compute(new_sorting_analyzer, verbose)

    # -------------------------------------------------------------- access
    def _get_data(self, outputs: str = "matrices"):
        """The connectivity matrices (default), or ``outputs="sequence"`` for a ``ConnectivitySequence`` and
        ``outputs="graphs"`` for the thresholded ``GraphSequence``."""
        if outputs == "matrices":
            return self.get_matrices()
        if outputs == "sequence":
            return self.get_connectivity()
        if outputs == "graphs":
            return self.get_graphs()
        raise ValueError(f"outputs must be 'matrices', 'sequence' or 'graphs', got {outputs!r}.")

    def get_matrices(self) -> np.ndarray:
        """Unthresholded connectivity, ``(n_windows, n_units, n_units)`` float32, symmetric."""
        return np.asarray(self.data["matrices"])

    def get_windows(self):
        """The analysis windows as a :class:`~spikeinterface_tavrnn.Windows`."""
        from .windows import Windows

        labels = self.data.get("window_labels")
        return Windows(
            np.asarray(self.data["window_starts"]),
            np.asarray(self.data["window_stops"]),
            None if labels is None else np.asarray(labels),
        )

    def _unit_labels(self):
        from .spiketrains import resolve_unit_labels

        try:
            return resolve_unit_labels(self.sorting_analyzer, self.params["label_property"])[0]
        except KeyError:  # the property was removed from the sorting since the computation
            return None

    def get_unit_labels(self) -> np.ndarray | None:
        """One label per unit (region, well) as used by the plots, or None (see ``label_property``)."""
        return self._unit_labels()

    def get_method_params(self) -> dict:
        """The estimator's parameters as used, defaults filled in (for example ``{"dt_ms": 5.0}`` for STTC)."""
        from .connectivity.registry import get_estimator

        return {**get_estimator(self.params["method"]).defaults, **self._method_params()}

    def get_connectivity(self):
        """The stored matrices as a :class:`~spikeinterface_tavrnn.ConnectivitySequence`."""
        from .connectivity import ConnectivitySequence

        return ConnectivitySequence(
            matrices=self.get_matrices(),
            windows=self.get_windows(),
            unit_ids=np.asarray(self.sorting_analyzer.unit_ids),
            method=self.params["method"],
            params={**self._method_params(), "backend": self.params["backend"]},
            lags_ms=None if "lags_ms" not in self.data else np.asarray(self.data["lags_ms"]),
            unit_labels=self._unit_labels(),
        )

    def get_firing_rates(self) -> np.ndarray:
        """Firing rate of every unit in every window, in Hz, ``(n_windows, n_units)`` (stored when computed;
        recounted from the sorting for analyzers saved before the rates were stored)."""
        if "firing_rates_hz" in self.data:
            return np.asarray(self.data["firing_rates_hz"], dtype=np.float64)
        from .spiketrains import SpikeTrains

        p = self.params
        spikes = SpikeTrains.from_sorting(
            self.sorting_analyzer, segment_index=p["segment_index"], label_property=None, duplicates="keep"
        )
        return _window_rates_hz(spikes, self.get_windows())

    def get_edge_density(self) -> np.ndarray:
        """Fraction of unit pairs kept as edges in each window, ``(n_windows,)`` in [0, 1]."""
        return edge_density_from_offsets(self.data["edge_offsets"], self.get_matrices().shape[1])

    def get_graphs(self):
        """The thresholded graphs as a :class:`~spikeinterface_tavrnn.GraphSequence` (node features: rows of
        ``|matrix|`` with unit diagonal, as in the paper; firing rates per window for structural features)."""
        from .graphs import GraphSequence

        from .connectivity.thresholds import connectivity_features

        offsets = np.asarray(self.data["edge_offsets"])
        edge_index, edge_weight = np.asarray(self.data["edge_index"]), np.asarray(self.data["edge_weight"])
        features = connectivity_features(np.asarray(self.data["matrices"], dtype=np.float32))
        return GraphSequence(
            [edge_index[:, offsets[t] : offsets[t + 1]] for t in range(offsets.size - 1)],
            num_nodes=features.shape[1],
            edge_weights=[edge_weight[offsets[t] : offsets[t + 1]] for t in range(offsets.size - 1)],
            node_features=features,
            node_ids=np.asarray(self.sorting_analyzer.unit_ids),
            windows=self.get_windows(),
            node_labels=self._unit_labels(),
            firing_rates_hz=self.get_firing_rates(),
        )


class ComputeTAVRNNEmbeddings(AnalyzerExtension):
    """TAVRNN node embeddings of every unit in every window of the ``functional_connectivity`` graphs.

    Parameters are those of :class:`spikeinterface_tavrnn.TAVRNN`, with its defaults (read from its signature, so
    ``spikeinterface.core.get_default_analyzer_extension_params("tavrnn_embeddings")`` reports them; the model's
    progress bar, thread and multi-recording settings excluded), plus the two below. ``node_features`` must be one
    of the names ("auto", "graph", "adjacency", "identity", "structural"): for custom feature arrays use the
    estimator directly on ``functional_connectivity``'s ``get_graphs()``.

    Parameters
    ----------
    score_links : bool, default: False
        Also compute link detection / prediction scores (trains a second model with hidden edges).
    model_path : str or None, default: None
        A model saved with :meth:`TAVRNN.save <spikeinterface_tavrnn.TAVRNN.save>` (for example one trained on many
        recordings with ``node_features="structural"``): embed this analyzer's units with it, without training, so
        that recordings share one embedding space. The other model parameters are then those of the saved model.

    Returns
    -------
    embeddings : np.ndarray
        ``(n_windows, n_units, z_dim)`` posterior means (``get_data()``).
    """

    extension_name = EMBEDDINGS_EXTENSION
    depend_on = [CONNECTIVITY_EXTENSION]
    need_recording = False
    use_nodepipeline = False
    need_job_kwargs = False
    need_backward_compatibility_on_load = True

    def _embedding_params(self, **params) -> dict:
        """Check the given parameters and complete them with the defaults (those of ``TAVRNN``)."""
        defaults = {**model_defaults(), **_EMBEDDING_EXTRA_DEFAULTS}
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise TavrnnInputError(f"unknown tavrnn_embeddings parameter(s) {unknown}; known: {sorted(defaults)}")
        params = {**defaults, **params}
        if not isinstance(params["node_features"], str):
            raise TavrnnInputError(
                "in the analyzer extension node_features must be 'auto', 'graph', 'adjacency', 'identity' or "
                "'structural'; for custom feature arrays use the TAVRNN estimator directly on extension.get_graphs()"
            )
        for key in ("z_dim", "h_dim", "n_layers", "epochs"):
            params[key] = int(params[key])
        for key in ("attention", "history_node", "use_edge_weight", "score_links"):
            params[key] = bool(params[key])
        if params["bptt_windows"] is not None:
            params["bptt_windows"] = int(params["bptt_windows"])
        if params["model_path"] is not None:
            params["model_path"] = str(params["model_path"])
        return params

    _set_params = ParamsWithSignature(
        _embedding_params,
        lambda: [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
            for name, default in {**model_defaults(), **_EMBEDDING_EXTRA_DEFAULTS}.items()
        ],
    )

    def _estimator(self, verbose: bool):
        from .estimator import TAVRNN

        if self.params.get("model_path") is not None:
            model = TAVRNN.load(self.params["model_path"], device=self.params["device"])
            model.verbose = verbose
            return model
        defaults = model_defaults()
        # analyzers saved before a parameter existed get its default
        params = {**defaults, **{key: value for key, value in self.params.items() if key in defaults}}
        return TAVRNN(**params, verbose=verbose)

    def _run(self, verbose: bool = False, **job_kwargs) -> None:
        graphs = self.sorting_analyzer.get_extension(CONNECTIVITY_EXTENSION).get_graphs()
        model = self._estimator(verbose)
        if self.params.get("model_path") is None:
            model.fit(graphs)
            attention = model.attention_weights_
        else:  # a saved model: embed only
            attention = model.attention_weights(graphs)
        data = {
            "embeddings": model.transform(graphs).astype(np.float32),
            # Without attention (VGRNN) each window sees only its own recurrent state: the identity.
            "attention_weights": np.asarray(np.eye(len(graphs)) if attention is None else attention, dtype=np.float32),
            "loss_history": np.asarray(model.loss_history_, dtype=np.float64),
            "stale_units": np.zeros(graphs.num_nodes, dtype=bool),
            "format_info": _version_info(),
        }
        model_params, model_arrays = model.get_state()
        data["model_params"] = model_params
        for name, array in model_arrays.items():
            data[f"model__{name}"] = np.asarray(array)
        if self.params["score_links"]:
            scores = self._estimator(verbose).score_links(graphs)
            data["link_scores"] = {key: float(value) for key, value in scores.items() if np.isscalar(value)}
        self.data = data

    def _handle_backward_compatibility_on_load(self) -> None:
        _check_version_info(self)

    # -------------------------------------------------------------- curation
    def _select_units_extension_data(self, unit_ids) -> dict:
        keep = _unit_indices(self.sorting_analyzer, unit_ids)
        new_data = dict(self.data)
        new_data["embeddings"] = np.asarray(self.data["embeddings"])[:, keep]
        new_data["stale_units"] = np.asarray(self.data["stale_units"])[keep]
        return new_data

    _select_extension_data = _select_units_extension_data  # name used by spikeinterface < 0.105

    def _carry_over(self, new_sorting_analyzer) -> dict:
        old_ids = list(self.sorting_analyzer.unit_ids)
        new_ids = list(new_sorting_analyzer.unit_ids)
        old = np.asarray(self.data["embeddings"])
        embeddings = np.full((old.shape[0], len(new_ids), old.shape[2]), np.nan, dtype=np.float32)
        stale = np.ones(len(new_ids), dtype=bool)
        for i, unit_id in enumerate(new_ids):
            if unit_id in old_ids:
                embeddings[:, i] = old[:, old_ids.index(unit_id)]
                stale[i] = bool(np.asarray(self.data["stale_units"])[old_ids.index(unit_id)])
        warnings.warn(_STALE_MESSAGE, stacklevel=3)
        return {**self.data, "embeddings": embeddings, "stale_units": stale}

    def _merge_extension_data(
        self, merge_unit_groups, new_unit_ids, new_sorting_analyzer, keep_mask=None, verbose=False, **job_kwargs
    ) -> dict:
        return self._carry_over(new_sorting_analyzer)

    def _split_extension_data(self, split_units, new_unit_ids, new_sorting_analyzer, verbose=False, **job_kwargs):
        return self._carry_over(new_sorting_analyzer)

    # -------------------------------------------------------------- access
    def is_stale(self) -> bool:
        """Whether units were merged or split since training (their embeddings are NaN)."""
        return bool(np.any(np.asarray(self.data["stale_units"])))

    def _warn_if_stale(self) -> None:
        if self.is_stale():
            warnings.warn(_STALE_MESSAGE, stacklevel=4)

    def _get_data(self, outputs: str = "embeddings"):
        """The embeddings ``(n_windows, n_units, z_dim)`` (default), or ``outputs="attention"``,
        ``"loss_history"`` or ``"link_scores"``."""
        getters = {
            "embeddings": self.get_embeddings,
            "attention": self.get_attention_weights,
            "loss_history": self.get_loss_history,
        }
        if outputs in getters:
            return getters[outputs]()
        if outputs == "link_scores":
            scores = self.get_link_scores()
            if scores is None:
                raise KeyError("No link scores: compute the extension with score_links=True.")
            return scores
        raise ValueError(f"outputs must be one of {list(getters) + ['link_scores']}, got {outputs!r}.")

    def get_embeddings(self) -> np.ndarray:
        """Posterior means ``(n_windows, n_units, z_dim)`` (NaN rows for units created by merges or splits)."""
        self._warn_if_stale()
        return np.asarray(self.data["embeddings"])

    def get_attention_weights(self) -> np.ndarray:
        """Temporal attention ``(n_windows, n_windows)``: row t is how window t weighs windows 0..t (identity
        without attention)."""
        return np.asarray(self.data["attention_weights"])

    def get_loss_history(self) -> np.ndarray:
        """Training loss per epoch (empty when a saved model was applied without training)."""
        return np.asarray(self.data["loss_history"])

    def get_link_scores(self) -> dict[str, float] | None:
        """Link detection / prediction scores (``score_links=True``), or None when they were not computed."""
        scores = self.data.get("link_scores")
        return None if scores is None else {key: float(value) for key, value in dict(scores).items()}

    def get_model(self):
        """The trained :class:`~spikeinterface_tavrnn.TAVRNN`, to ``transform`` new graphs over these units."""
        from .estimator import TAVRNN

        arrays = {key[len("model__") :]: np.asarray(v) for key, v in self.data.items() if key.startswith("model__")}
        return TAVRNN.from_state(dict(self.data["model_params"]), arrays)


def _register(extension_class) -> None:
    """Register once; a second import (autoreload, ``importlib.reload``) of this module is not an error."""
    from spikeinterface.core.sortinganalyzer import _builtin_extensions, _possible_extensions

    if extension_class.extension_name in _builtin_extensions:
        raise RuntimeError(
            f"SpikeInterface now has a built-in extension named {extension_class.extension_name!r}; this version of "
            "spikeinterface_tavrnn cannot register its own under that name. Upgrade spikeinterface_tavrnn."
        )
    registered = {ext.extension_name: ext for ext in _possible_extensions}
    existing = registered.get(extension_class.extension_name)
    if existing is None:
        register_result_extension(extension_class)
    elif existing.__module__ != extension_class.__module__ or existing.__qualname__ != extension_class.__qualname__:
        raise RuntimeError(
            f"Another package already registered an analyzer extension named {extension_class.extension_name!r} "
            f"({existing.__module__}.{existing.__qualname__}); spikeinterface_tavrnn cannot register its own."
        )
    else:
        # Same class reloaded: swap in the new class object so analyzers use the current code.
        _possible_extensions[_possible_extensions.index(existing)] = extension_class


_register(ComputeFunctionalConnectivity)
_register(ComputeTAVRNNEmbeddings)

compute_functional_connectivity = ComputeFunctionalConnectivity.function_factory()
compute_tavrnn_embeddings = ComputeTAVRNNEmbeddings.function_factory()
