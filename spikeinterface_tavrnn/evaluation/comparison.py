"""Repeated runs over seeds: link scores and method comparisons with a mean and 95 % interval per score."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..defaults import signature_defaults
from .decoding import classify_windows
from .nodes import cluster_nodes
from .statistics import _progress, mean_ci
from .windows import DEFAULT_READOUT

#: Whether node embeddings are clustered at unit length; owned by :func:`cluster_nodes`.
DEFAULT_NORMALIZE: bool = signature_defaults(cluster_nodes)["normalize"]


# ============================================================================================== repeated runs
@dataclass
class ScoreTable:
    """Scores of several methods repeated over seeds: one row per (method, metric).

    Attributes
    ----------
    rows : list of dict
        Keys ``method``, ``metric``, ``mean``, ``ci_low``, ``ci_high`` (95 % Student-t interval over seeds, see
        :func:`mean_ci`), ``n_seeds``, ``time_s`` (mean seconds per seed to compute the embedding).
    raw : dict of (str, str) to list of float
        The per-seed values behind each row.
    """

    rows: list[dict[str, Any]]
    raw: dict[tuple[str, str], list[float]]

    def to_dicts(self) -> list[dict[str, Any]]:
        """The rows as plain dicts (``pandas.DataFrame(table.to_dicts())`` gives a data frame)."""
        return [dict(r) for r in self.rows]

    def get(self, method: str, metric: str) -> dict[str, Any]:
        """The row of one method and metric."""
        for r in self.rows:
            if r["method"] == method and r["metric"] == metric:
                return r
        raise KeyError((method, metric))

    def to_markdown(self, digits: int = 3) -> str:
        """A Markdown table: method, metric, mean, 95 % CI, n_seeds, time_s."""
        lines = ["| method | metric | mean | 95% CI | n_seeds | time_s |", "|---|---|---|---|---|---|"]
        for r in self.rows:
            ci = "n/a" if not np.isfinite(r["ci_low"]) else f"[{r['ci_low']:.{digits}f}, {r['ci_high']:.{digits}f}]"
            mean = f"{r['mean']:.{digits}f}"
            lines.append(f"| {r['method']} | {r['metric']} | {mean} | {ci} | {r['n_seeds']} | {r['time_s']:.2f} |")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_markdown()


def _table_from_raw(raw: dict[tuple[str, str], list[float]], times: dict[str, list[float]], confidence: float):
    rows = []
    for (method, metric), values in raw.items():
        mean, lo, hi = mean_ci(values, confidence)
        rows.append(
            {
                "method": method,
                "metric": metric,
                "mean": mean,
                "ci_low": lo,
                "ci_high": hi,
                "n_seeds": int(np.sum(np.isfinite(values))),
                "time_s": float(np.mean(times.get(method, [np.nan]))),
            }
        )
    return ScoreTable(rows, raw)


def link_scores(
    estimator_or_params: Any,
    graphs,
    seeds: Sequence[int] = (0, 1, 2),
    confidence: float = 0.95,
    method: str = "tavrnn",
    verbose: bool = False,
    **score_kwargs: Any,
) -> ScoreTable:
    """Intrinsic quality of TAVRNN (link detection and prediction AUC / AP), repeated over seeds.

    For each seed a fresh estimator with the given parameters and that seed runs ``score_links(graphs,
    **score_kwargs)``; every numeric entry of the returned dict becomes a row with its mean and interval.

    Parameters
    ----------
    estimator_or_params : TAVRNN or dict
        An estimator whose parameters are copied (``get_params()``), or a dict of TAVRNN parameters.
    graphs : GraphSequence
    seeds : sequence of int, default: (0, 1, 2)
    confidence : float, default: 0.95
    method : str, default: "tavrnn"
        Name used in the table's ``method`` column.
    verbose : bool, default: False
    **score_kwargs
        Passed to ``TAVRNN.score_links``.

    Returns
    -------
    ScoreTable
    """
    if isinstance(estimator_or_params, dict):
        from ..estimator import TAVRNN

        cls, params = TAVRNN, dict(estimator_or_params)
    else:
        cls, params = type(estimator_or_params), dict(estimator_or_params.get_params())
    params.setdefault("verbose", False)
    raw: dict[tuple[str, str], list[float]] = {}
    times: dict[str, list[float]] = {method: []}
    for seed in _progress(seeds, verbose, "seeds"):
        t0 = time.perf_counter()
        scores = cls(**{**params, "seed": int(seed)}).score_links(graphs, **score_kwargs)
        times[method].append(time.perf_counter() - t0)
        for key, value in scores.items():
            if isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
                raw.setdefault((method, key), []).append(float(value))
    return _table_from_raw(raw, times, confidence)


def compare_methods(
    graphs,
    labels: Sequence | None = None,
    node_labels: Sequence | None = None,
    methods: Sequence[str] = ("connectivity_pca", "spectral", "vgae", "vgrnn", "tavrnn"),
    seeds: Sequence[int] = (0, 1, 2),
    task: str = "windows",
    dim: int = 8,
    method_params: dict[str, dict[str, Any]] | None = None,
    readout: str = DEFAULT_READOUT,
    n_splits: int = 5,
    gap: int | str = "auto",
    groups: Sequence | None = None,
    n_permutations: int = 0,
    confidence: float = 0.95,
    embed_fn: Callable[..., np.ndarray] | None = None,
    verbose: bool = False,
    normalize: bool = DEFAULT_NORMALIZE,
) -> ScoreTable:
    """Compare embedding methods on one task, through one code path, repeated over seeds.

    For each method and seed: ``embed(graphs, method, seed=seed, dim=dim, **method_params[method])`` (timed), then
    :func:`classify_windows` (``task="windows"``) or :func:`cluster_nodes` (``task="nodes"``, across-window mean of
    ARI, NMI and silhouette) with the same seed. Scores are summarised by their mean and a Student-t interval over
    seeds (:func:`mean_ci`); deterministic methods (``connectivity_pca``, ``spectral``, ``graph_stats``) vary only
    through the seeded parts of the evaluation, so their interval may collapse.

    Parameters
    ----------
    graphs : GraphSequence
    labels : sequence, shape (T,), or None, default: None
        Window labels for ``task="windows"``; ``graphs.windows.labels`` when None.
    node_labels : sequence, shape (N,), or None, default: None
        Node groups for ``task="nodes"``; ``graphs.node_labels`` when None.
    methods : sequence of str, default: ("connectivity_pca", "spectral", "vgae", "vgrnn", "tavrnn")
        Names understood by :func:`spikeinterface_tavrnn.baselines.embed`.
    seeds : sequence of int, default: (0, 1, 2)
    task : {"windows", "nodes"}, default: "windows"
    dim : int, default: 8
        Embedding dimension for every method.
    method_params : dict of str to dict, or None, default: None
        Extra options per method, e.g. ``{"tavrnn": {"epochs": 200}, "vgae": {"epochs": 50}}``.
    readout, n_splits, gap, groups, n_permutations :
        Passed to :func:`classify_windows` (``n_permutations`` also to :func:`cluster_nodes`; 0 by default, since the
        comparison is between methods; when > 0 ``p_value`` rows are added, whose mean over seeds is a summary, not
        itself a p-value).
    confidence : float, default: 0.95
    embed_fn : callable or None, default: None
        Replacement for :func:`~spikeinterface_tavrnn.baselines.embed` with the same signature (to add a method).
    verbose : bool, default: False
    normalize : bool, default: False
        ``task="nodes"``: cluster unit-length embeddings (passed to :func:`cluster_nodes`, whose default it is).

    Returns
    -------
    ScoreTable

    Examples
    --------
    >>> import numpy as np
    >>> from spikeinterface_tavrnn.graphs import GraphSequence
    >>> a = np.kron(np.eye(2), np.ones((5, 5)))
    >>> graphs = GraphSequence.from_adjacency([a] * 4, node_labels=[0] * 5 + [1] * 5)
    >>> table = compare_methods(graphs, methods=["spectral"], seeds=[0, 1], task="nodes", dim=2)
    >>> table.get("spectral", "ari")["mean"]
    1.0
    """
    from ..baselines import embed

    embed_fn = embed if embed_fn is None else embed_fn
    method_params = {} if method_params is None else method_params
    windows = getattr(graphs, "windows", None)
    if task == "windows":
        if labels is None:
            labels = None if windows is None else getattr(windows, "labels", None)
        if labels is None:
            raise ValueError("task='windows' needs labels (or graphs.windows.labels).")
    elif task == "nodes":
        node_labels = getattr(graphs, "node_labels", None) if node_labels is None else node_labels
        if node_labels is None:
            raise ValueError("task='nodes' needs node_labels (or graphs.node_labels).")
    else:
        raise ValueError(f"task must be 'windows' or 'nodes', got {task!r}.")
    raw: dict[tuple[str, str], list[float]] = {}
    times: dict[str, list[float]] = {}
    for method in methods:
        params = dict(method_params.get(method, {}))
        if task == "nodes" and method == "connectivity_pca":
            params.setdefault("level", "node")
        for seed in _progress(seeds, verbose, method):
            t0 = time.perf_counter()
            emb = embed_fn(graphs, method, seed=int(seed), dim=dim, **params)
            times.setdefault(method, []).append(time.perf_counter() - t0)
            if task == "windows":
                res = classify_windows(
                    emb,
                    labels,
                    groups=groups,
                    n_splits=n_splits,
                    gap=gap,
                    windows=windows if windows is not None and hasattr(windows, "starts") else None,
                    readout=readout,
                    n_permutations=n_permutations,
                    seed=int(seed),
                )
                values = dict(res.scores)
                if n_permutations > 0:
                    values["p_value"] = res.p_value
            else:
                if np.asarray(emb).ndim != 3:
                    raise ValueError(f"method {method!r} gives window vectors, not node embeddings (task='nodes').")
                res = cluster_nodes(emb, node_labels, n_permutations=n_permutations, seed=int(seed),
                                    normalize=normalize)
                values = dict(res.mean_scores)
                if n_permutations > 0:
                    values.update({f"p_{m}": p for m, p in res.mean_p_values.items()})
            for metric, value in values.items():
                raw.setdefault((method, metric), []).append(float(value))
    return _table_from_raw(raw, times, confidence)
