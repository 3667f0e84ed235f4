"""The :class:`TAVRNN` estimator: training loop, devices, seeds, progress, embeddings, link scores, save / load."""

from __future__ import annotations

import copy
import functools
import io
import json
import math
import os
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from .graphs import GraphSequence
from .model.attention import ATTENTION_MODES
from .model.features import PreparedSequence, prepare_sequence, resolve_feature_kind
from .model.losses import NegativeSampler, kl_normal, reconstruction_loss
from .model.tavrnn import ModelOutput, TAVRNNModule

__all__ = ["TAVRNN", "PARITY_PRESET", "FORMAT_VERSION"]

#: Version of the file / state layout written by :meth:`TAVRNN.save` and :meth:`TAVRNN.get_state`.
FORMAT_VERSION = 1

#: Settings of the published TAVRNN (Khajehnejad et al. 2024) that ``preset="parity"`` imposes. The published
#: defects are not reproduced: every parameter is trained (defect 1), the model runs on any device (5), embeddings are
#: posterior means (3) and gradients are clipped (4, with ``clip_grad_norm``).
PARITY_PRESET = {
    "h_dim": 32,
    "z_dim": 8,
    "n_layers": 1,
    "learning_rate": 1e-2,
    "reconstruction": "dense",
    "attention": True,
    "attention_mode": "published",
    "attention_window": None,
    "history_node": True,
    "use_edge_weight": False,
    "kl_weight": 1.0,
    "early_stopping": None,
}

_PARAM_NAMES = (
    "z_dim",
    "h_dim",
    "n_layers",
    "attention",
    "attention_mode",
    "attention_window",
    "history_node",
    "node_features",
    "use_edge_weight",
    "reconstruction",
    "negative_ratio",
    "dense_max_nodes",
    "kl_weight",
    "learning_rate",
    "epochs",
    "early_stopping",
    "clip_grad_norm",
    "device",
    "seed",
    "verbose",
    "preset",
    "num_threads",
    "bptt_windows",
    "recordings_per_step",
)

#: Graphs up to this many nodes run on one CPU thread with ``num_threads="auto"``.
SINGLE_THREAD_MAX_NODES = 512


@contextmanager
def _torch_threads(num_threads: int | None):
    """Run a block with ``num_threads`` CPU threads in torch (None: leave the setting alone)."""
    if num_threads is None or num_threads == torch.get_num_threads():
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(num_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _with_thread_policy(method):
    """Apply the estimator's ``num_threads`` policy to a method whose first argument is a GraphSequence."""

    @functools.wraps(method)
    def wrapper(self, graphs, *args, **kwargs):
        with _torch_threads(self._resolve_num_threads(graphs)):
            return method(self, graphs, *args, **kwargs)

    return wrapper


def _resolve_device(device: str | torch.device) -> torch.device:
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class TAVRNN:
    """Temporal Attention-enhanced Variational Graph RNN: unsupervised node embeddings of a dynamic graph.

    A variational graph recurrent network (VGRNN: GCN encoder, recurrent prior, inner-product decoder, graph GRU)
    with temporal attention over past recurrent states and a history node (Khajehnejad et al., arXiv 2410.00665;
    Hajiramezanali et al., NeurIPS 2019). See ``shared/TAVRNN_MODEL.md`` for the published model, its code's defects
    and what this implementation does instead. scikit-learn style: the constructor only stores parameters.

    Parameters
    ----------
    z_dim : int, default: 8
        Embedding (latent) size k, as published.
    h_dim : int, default: 32
        Recurrent state size d, as published.
    n_layers : int, default: 1
        Graph-GRU layers, as published.
    attention : bool, default: True
        Temporal attention; False gives VGRNN (the paper's ablation).
    attention_mode : {"gated", "published"}, default: "gated"
        "gated": the attended history is mixed into the recurrent state through a learned gate that starts near zero,
        with a readout history node (see :mod:`spikeinterface_tavrnn.model.attention`); it is at least as good as no
        attention on link detection. "published": the attended value replaces the state and the history node is
        wired to every node, as in the authors' code.
    attention_window : int or None, default: None
        Number of attended windows, the current one included; None attends to the whole history (as published).
    history_node : bool, default: True
        Use a history node as the graph summary that queries the attention; it never appears in outputs. Only used
        with ``attention=True``.
    node_features : {"auto", "identity", "adjacency", "graph", "structural"} or array-like, default: "auto"
        "identity": one-hot node ids (an embedding lookup, no N x N matrix); "adjacency": rows of each window's
        weighted adjacency with diagonal 1; "graph": the ``node_features`` the GraphSequence carries (for
        connectivity graphs the unthresholded ``|r|`` rows, the published DishBrain features); "structural":
        inductive statistics of each node in each window's graph (degree, strength, clustering, connectivity
        profile, firing rate when known; see :mod:`spikeinterface_tavrnn.structural`), standardised with the
        training recordings' statistics, so that one model embeds recordings of any size, including unseen ones;
        an array (N, F) or (T, N, F); "auto": "graph" when the sequence carries features, else "identity" (for a
        list of sequences: "structural").
    use_edge_weight : bool, default: False
        Use edge weights (must be non-negative) in the GCN normalisation; the published model uses binary graphs.
    reconstruction : {"auto", "dense", "sampled"}, default: "auto"
        "dense": exact loss over all N^2 pairs (as published, O(N^2) time, memory bounded by blocks); "sampled":
        unbiased estimate from the edges and ``negative_ratio`` times as many sampled non-edges (O(edges));
        "auto": dense up to ``dense_max_nodes`` nodes, sampled above.
    negative_ratio : float, default: 1.0
        Non-edges drawn per positive pair with ``reconstruction="sampled"``.
    dense_max_nodes : int, default: 2048
        Threshold of ``reconstruction="auto"``.
    kl_weight : float, default: 1.0
        Weight of the KL term of the ELBO (1 = the published negative ELBO).
    learning_rate : float, default: 0.01
        Adam learning rate, as published.
    epochs : int, default: 500
        Maximum number of epochs (one epoch = one gradient step on the whole sequence, as published for DishBrain).
    early_stopping : int or None, default: 50
        Stop when the training loss has not improved by more than 1e-4 (relative) for this many epochs; None or 0
        trains for all ``epochs``.
    clip_grad_norm : float or None, default: 10.0
        Clip the gradient norm (VGRNN's value; the published code configured clipping but never applied it).
    device : str or torch.device, default: "auto"
        "auto" uses CUDA when available, else the CPU.
    seed : int or None, default: None
        Seeds initialisation, sampling and negative sampling; with a seed, CPU runs are bit-for-bit repeatable
        and CUDA runs agree to rounding (CUDA's sparse products may add in any order).
        None draws a seed (kept in ``seed_``).
    verbose : bool, default: False
        Show a tqdm progress bar over epochs with the loss.
    preset : {None, "parity"}, default: None
        "parity" imposes the published settings (:data:`PARITY_PRESET`: h 32, z 8, lr 1e-2, dense reconstruction,
        whole-history published attention, wired history node, no early stopping) with the code's defects fixed;
        those parameters then override the constructor's.
    num_threads : int, "auto" or None, default: "auto"
        CPU threads torch uses while this estimator computes. "auto": one thread for graphs of at most 512 nodes,
        whose per-window operations are too small to gain from threads (on a busy machine, torch's default threads
        made such models 10-50 times slower), and torch's own setting above that; None: torch's own setting. The
        compiled CPU kernels run on the same threads (torch's OpenMP workers, rows split among them), so on a
        machine whose cores are busy with other work, fewer threads can be faster.
    bptt_windows : int or None, default: None
        Truncated back-propagation through time: the gradient flows through at most this many consecutive windows.
        The recurrence and attention still run over the whole sequence (state and attended history are carried
        into the next chunk, detached) and each epoch is still one optimiser step on the loss of every window, so
        training memory grows with ``bptt_windows`` instead of the number of windows. None: full back-propagation
        (as published); a value >= the number of windows gives exactly the same fit.
    recordings_per_step : int, default: 1
        When fitting a list of sequences: recordings per optimiser step, which follows the gradient of their mean
        loss (a mini-batch of recordings, drawn in an order shuffled every epoch with ``seed``). Recordings are
        processed one at a time, so memory does not grow with their number.

    Attributes
    ----------
    module_ : TAVRNNModule
        The trained torch module.
    loss_history_ : numpy.ndarray
        Training loss (negative ELBO summed over windows; for a list, its mean over recordings) per epoch.
    attention_weights_ : numpy.ndarray, list of numpy.ndarray or None
        (n_windows, n_windows) attention of each window (row) over windows (columns) on the training sequence (one
        such array per recording after fitting a list); rows sum to 1 and are zero outside the attention window.
        None without attention.
    n_features_in_ : int
        Input feature size seen by the model.
    n_nodes_ : int or list of int
        Number of nodes of the training graphs (per recording after fitting a list).
    n_windows_ : int or list of int
        Number of training windows (per recording after fitting a list).
    n_recordings_ : int
        Number of training sequences (1 unless a list was fitted).
    structural_features_ : tuple of str or None
        Names of the structural features (``node_features="structural"``); their training mean and standard
        deviation are ``structural_mean_`` and ``structural_scale_``.
    seed_ : int
        The seed used.

    Notes
    -----
    On the CPU, one-layer models with gated or no attention run their recurrence in numba kernels
    (:mod:`spikeinterface_tavrnn.model.cpu_kernels`), compiled at the first fit after installation (several seconds,
    then cached on disk); the published attention, float64 and CUDA run the same arithmetic as PyTorch operations.

    Examples
    --------
    >>> import numpy as np
    >>> from spikeinterface_tavrnn.graphs import GraphSequence
    >>> from spikeinterface_tavrnn.estimator import TAVRNN
    >>> rng = np.random.default_rng(0)
    >>> mats = []
    >>> for t in range(4):
    ...     upper = np.triu(rng.random((30, 30)) < 0.2, 1)
    ...     mats.append((upper | upper.T).astype(np.float32))
    >>> graphs = GraphSequence.from_adjacency(mats)
    >>> model = TAVRNN(z_dim=4, h_dim=16, epochs=20, seed=0).fit(graphs)
    >>> model.transform(graphs).shape
    (4, 30, 4)
    >>> model.attention_weights_.shape
    (4, 4)

    One model across recordings of different sizes, embedding a recording it has not seen:

    >>> def recording(n_nodes, seed):
    ...     r = np.random.default_rng(seed)
    ...     upper = [np.triu(r.random((n_nodes, n_nodes)) < 0.2, 1) for _ in range(3)]
    ...     return GraphSequence.from_adjacency([(u | u.T).astype(np.float32) for u in upper])
    >>> shared = TAVRNN(node_features="structural", z_dim=4, h_dim=16, epochs=5, seed=0)
    >>> shared = shared.fit([recording(20, 1), recording(35, 2)])
    >>> shared.transform(recording(50, 3)).shape
    (3, 50, 4)
    """

    def __init__(
        self,
        z_dim: int = 8,
        h_dim: int = 32,
        n_layers: int = 1,
        attention: bool = True,
        attention_mode: str = "gated",
        attention_window: int | None = None,
        history_node: bool = True,
        node_features: Any = "auto",
        use_edge_weight: bool = False,
        reconstruction: str = "auto",
        negative_ratio: float = 1.0,
        dense_max_nodes: int = 2048,
        kl_weight: float = 1.0,
        learning_rate: float = 1e-2,
        epochs: int = 500,
        early_stopping: int | None = 50,
        clip_grad_norm: float | None = 10.0,
        device: str | torch.device = "auto",
        seed: int | None = None,
        verbose: bool = False,
        preset: str | None = None,
        num_threads: int | str | None = "auto",
        bptt_windows: int | None = None,
        recordings_per_step: int = 1,
    ):
        self.z_dim = z_dim
        self.h_dim = h_dim
        self.n_layers = n_layers
        self.attention = attention
        self.attention_mode = attention_mode
        self.attention_window = attention_window
        self.history_node = history_node
        self.node_features = node_features
        self.use_edge_weight = use_edge_weight
        self.reconstruction = reconstruction
        self.negative_ratio = negative_ratio
        self.dense_max_nodes = dense_max_nodes
        self.kl_weight = kl_weight
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.early_stopping = early_stopping
        self.clip_grad_norm = clip_grad_norm
        self.device = device
        self.seed = seed
        self.verbose = verbose
        self.preset = preset
        self.num_threads = num_threads
        self.bptt_windows = bptt_windows
        self.recordings_per_step = recordings_per_step

    # ------------------------------------------------------------------ parameters
    def _resolve_num_threads(self, graphs: Any) -> int | None:
        if self.num_threads == "auto":
            if isinstance(graphs, (list, tuple)):
                sizes = [getattr(g, "num_nodes", None) for g in graphs]
                num_nodes = max(sizes) if sizes and None not in sizes else None
            else:
                num_nodes = getattr(graphs, "num_nodes", None)
            return 1 if num_nodes is not None and num_nodes <= SINGLE_THREAD_MAX_NODES else None
        if self.num_threads is not None and (int(self.num_threads) != self.num_threads or self.num_threads < 1):
            raise ValueError(f"num_threads must be 'auto', None or a positive integer, got {self.num_threads!r}.")
        return self.num_threads

    def get_params(self, deep: bool = True) -> dict:
        """Constructor parameters (scikit-learn convention)."""
        return {name: getattr(self, name) for name in _PARAM_NAMES}

    def set_params(self, **params) -> "TAVRNN":
        """Set constructor parameters (scikit-learn convention)."""
        for name, value in params.items():
            if name not in _PARAM_NAMES:
                raise ValueError(f"unknown parameter {name!r}; valid parameters: {', '.join(_PARAM_NAMES)}.")
            setattr(self, name, value)
        return self

    def _config(self) -> dict:
        """Parameters after the preset, validated."""
        cfg = self.get_params()
        if cfg["preset"] is not None:
            if cfg["preset"] != "parity":
                raise ValueError(f"preset must be None or 'parity', got {cfg['preset']!r}.")
            cfg.update(PARITY_PRESET)
        for name in ("z_dim", "h_dim", "n_layers", "epochs"):
            if int(cfg[name]) != cfg[name] or cfg[name] < 1:
                raise ValueError(f"{name} must be a positive integer, got {cfg[name]!r}.")
        if cfg["attention_mode"] not in ATTENTION_MODES:
            raise ValueError(f"attention_mode must be one of {ATTENTION_MODES}, got {cfg['attention_mode']!r}.")
        if cfg["attention_window"] is not None and (
            int(cfg["attention_window"]) != cfg["attention_window"] or cfg["attention_window"] < 1
        ):
            raise ValueError(f"attention_window must be None or a positive integer, got {cfg['attention_window']!r}.")
        if cfg["reconstruction"] not in ("auto", "dense", "sampled"):
            raise ValueError(f"reconstruction must be 'auto', 'dense' or 'sampled', got {cfg['reconstruction']!r}.")
        if not cfg["learning_rate"] > 0:
            raise ValueError(f"learning_rate must be > 0, got {cfg['learning_rate']!r}.")
        if cfg["kl_weight"] < 0:
            raise ValueError(f"kl_weight must be >= 0, got {cfg['kl_weight']!r}.")
        if not cfg["negative_ratio"] > 0:
            raise ValueError(f"negative_ratio must be > 0, got {cfg['negative_ratio']!r}.")
        bptt = cfg["bptt_windows"]
        if bptt is not None and (isinstance(bptt, bool) or int(bptt) != bptt or bptt < 1):
            raise ValueError(f"bptt_windows must be None or a positive integer, got {bptt!r}.")
        per_step = cfg["recordings_per_step"]
        if isinstance(per_step, bool) or int(per_step) != per_step or per_step < 1:
            raise ValueError(f"recordings_per_step must be a positive integer, got {per_step!r}.")
        return cfg

    # ------------------------------------------------------------------ helpers
    def _check_graphs(self, graphs: Any) -> GraphSequence:
        if isinstance(graphs, (list, tuple)) and graphs and all(isinstance(g, GraphSequence) for g in graphs):
            raise TypeError(
                "this method takes one GraphSequence; call it on each recording of the list (fit and transform "
                "take lists)."
            )
        if not isinstance(graphs, GraphSequence):
            raise TypeError(
                f"expected a GraphSequence, got {type(graphs).__name__}; build one with "
                "GraphSequence.from_adjacency(...) or ConnectivitySequence.to_graphs(...)."
            )
        return graphs

    def _check_recordings(self, graphs: Any) -> tuple[list[GraphSequence], bool]:
        """(sequences, given as a list) for fit / transform, which take one GraphSequence or a list of them."""
        if isinstance(graphs, GraphSequence):
            return [graphs], False
        if isinstance(graphs, (list, tuple)):
            if not graphs:
                raise ValueError("got an empty list of graph sequences; pass at least one GraphSequence.")
            for index, g in enumerate(graphs):
                if not isinstance(g, GraphSequence):
                    raise TypeError(
                        f"item {index} of the list is a {type(g).__name__}, not a GraphSequence; build one per "
                        "recording with ConnectivitySequence.to_graphs(...) or GraphSequence.from_adjacency(...)."
                    )
            return list(graphs), True
        return [self._check_graphs(graphs)], False

    def _structural(self, graphs: GraphSequence) -> np.ndarray:
        """Standardised structural features of ``graphs`` (T, N, F), checked against the fitted feature names."""
        from .structural import structural_node_features

        raw, names = structural_node_features(graphs)
        if tuple(names) != tuple(self.structural_features_):
            missing = sorted(set(self.structural_features_) - set(names))
            hint = (
                " (the training graphs carried firing rates: build these graphs with ConnectivitySequence.to_graphs, "
                "or set firing_rates_hz)"
                if "log_rate" in missing
                else ""
            )
            raise ValueError(
                f"the model was fitted on structural features {list(self.structural_features_)}, these graphs give "
                f"{list(names)}{hint}."
            )
        return (raw - self.structural_mean_) / self.structural_scale_

    def _fit_structural(self, recordings: list[GraphSequence]) -> list[np.ndarray]:
        """Learn the standardisation of the structural features on the training recordings; return theirs."""
        from .structural import structural_node_features

        raws, names = [], None
        for index, graphs in enumerate(recordings):
            raw, these = structural_node_features(graphs)
            if names is not None and tuple(these) != tuple(names):
                raise ValueError(
                    f"recording {index} gives structural features {list(these)} but recording 0 gives {list(names)}: "
                    "either every sequence carries firing_rates_hz or none does."
                )
            names = these
            raws.append(raw)
        flat = np.concatenate([r.reshape(-1, r.shape[2]) for r in raws]).astype(np.float64)
        self.structural_features_ = tuple(names)
        self.structural_mean_ = flat.mean(axis=0).astype(np.float32)
        std = flat.std(axis=0)
        self.structural_scale_ = np.where(std > 1e-8, std, 1.0).astype(np.float32)
        return [(r - self.structural_mean_) / self.structural_scale_ for r in raws]

    def _wired(self, cfg: dict) -> bool:
        return bool(cfg["attention"] and cfg["history_node"] and cfg["attention_mode"] == "published")

    def _prepare(self, graphs: GraphSequence, cfg: dict, kind: str, array: Any, device: torch.device):
        return prepare_sequence(
            graphs,
            kind,
            feature_array=array,
            wired_history_node=self._wired(cfg),
            use_edge_weight=cfg["use_edge_weight"],
            device=device,
        )

    def _build_module(self, cfg: dict, n_features: int, kind: str) -> TAVRNNModule:
        return TAVRNNModule(
            n_features,
            kind,
            h_dim=int(cfg["h_dim"]),
            z_dim=int(cfg["z_dim"]),
            n_layers=int(cfg["n_layers"]),
            attention=bool(cfg["attention"]),
            attention_mode=cfg["attention_mode"],
            attention_window=cfg["attention_window"],
            history_node=bool(cfg["history_node"]),
            wired_index=-1 if self._wired(cfg) else None,  # the wired node is appended last, whatever N
        )

    @staticmethod
    def _loss(
        out: ModelOutput, prep: PreparedSequence, mode: str, negatives, kl_weight: float, compiled: bool = True
    ) -> torch.Tensor:
        rec = reconstruction_loss(
            out.z, prep, mode=mode, negatives=negatives, compiled=compiled, precomputed=out.pairwise
        )
        kl = kl_normal(out.mu, out.sigma, out.prior_mu, out.prior_sigma, compiled=compiled)
        return (rec + kl_weight * kl).sum()

    # ------------------------------------------------------------------ fit
    @_with_thread_policy
    def fit(self, graphs: GraphSequence | list, y: Any = None) -> "TAVRNN":
        """Train on a graph sequence, or one model on a list of sequences (recordings).

        Parameters
        ----------
        graphs : GraphSequence or list of GraphSequence
            The dynamic graph (at least one window; windows without edges are allowed). A list trains one model on
            many recordings, which may differ in size and length: it needs node features that do not tie the model
            to a node set (``"structural"``, which ``"auto"`` then selects, or ``"graph"`` features of one width).
            Each epoch visits every recording once, ``recordings_per_step`` per optimiser step.
        y : ignored
            Present for scikit-learn compatibility.

        Returns
        -------
        TAVRNN
            ``self``, fitted.
        """
        from tqdm.auto import tqdm

        recordings, as_list = self._check_recordings(graphs)
        cfg = self._config()
        device = _resolve_device(cfg["device"])
        seed = int(cfg["seed"]) if cfg["seed"] is not None else int(np.random.SeedSequence().generate_state(1)[0])
        fork_devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices):
            trainer = _Trainer(self, recordings, cfg, device, seed, as_list)
            patience = int(cfg["early_stopping"] or 0)
            history: list[float] = []
            best, since_best = math.inf, 0
            bar = tqdm(range(int(cfg["epochs"])), desc="TAVRNN", disable=not cfg["verbose"], leave=False)
            for _ in bar:
                value = trainer.step()
                history.append(value)
                bar.set_postfix(loss=f"{value:.4f}", refresh=False)
                if patience:
                    # The first epoch always counts as an improvement (inf - inf would be NaN).
                    if not math.isfinite(best) or value < best - 1e-4 * abs(best):
                        best, since_best = value, 0
                    else:
                        since_best += 1
                        if since_best >= patience:
                            break
            bar.close()
        module = trainer.module.eval()
        module.workspaces.clear()  # training's reusable scratch buffers are not needed by transform

        self.module_ = module
        self.loss_history_ = np.asarray(history, dtype=np.float64)
        self.n_features_in_ = int(trainer.prepared[0].n_features)
        nodes, windows = [int(g.num_nodes) for g in recordings], [len(g) for g in recordings]
        self.n_recordings_ = len(recordings)
        self.n_nodes_ = nodes if as_list else nodes[0]
        self.n_windows_ = windows if as_list else windows[0]
        self.feature_kind_ = trainer.kind
        modes = sorted(set(trainer.modes))
        self.reconstruction_ = modes[0] if len(modes) == 1 else "mixed"
        self.device_ = device
        self.seed_ = seed
        self.n_epochs_ = len(history)
        self._fit_array = None if trainer.array is None else np.asarray(trainer.array, dtype=np.float32)
        attention = []
        for g, prepared in zip(recordings, trainer.prepared):
            out = self._run(g, sample=False, prepared=prepared)
            attention.append(None if out.attention is None else out.attention.cpu().numpy().astype(np.float64))
        self.attention_weights_ = attention if as_list and attention[0] is not None else attention[0]
        return self

    # ------------------------------------------------------------------ inference
    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise RuntimeError("this TAVRNN is not fitted yet; call fit(graphs) first (or TAVRNN.load(path)).")

    def _prepare_for_inference(self, graphs: GraphSequence, node_features: Any = None) -> PreparedSequence:
        cfg = self._config()
        kind = self.feature_kind_
        n = graphs.num_nodes
        if kind == "structural":
            if node_features is not None:
                raise ValueError("node_features is not used by models fitted on structural features.")
            prep = self._prepare(graphs, cfg, kind, self._structural(graphs), self.device_)
            return prep
        if kind in ("identity", "adjacency") and n != self.n_nodes_:
            raise ValueError(
                f"the model was fitted on {self.n_nodes_} nodes with {kind!r} features, the graphs have {n}; "
                "identity and adjacency features tie the model to its node set."
            )
        array = None
        if kind == "array":
            array = node_features if node_features is not None else self._fit_array
            if node_features is None and array is not None and array.ndim == 3 and array.shape[0] != len(graphs):
                raise ValueError(
                    f"the model was fitted with per-window node features for {array.shape[0]} windows; "
                    f"pass node_features for the {len(graphs)} windows given."
                )
        elif node_features is not None:
            raise ValueError(
                f"node_features is only used by models fitted on array features (this one uses {kind!r})."
            )
        if kind == "graph" and graphs.node_features is None:
            raise ValueError("this model was fitted on the graphs' node_features; these graphs carry none.")
        prep = self._prepare(graphs, cfg, kind, array, self.device_)
        if prep.n_features != self.n_features_in_:
            raise ValueError(
                f"the model expects {self.n_features_in_} input features, these graphs give {prep.n_features}."
            )
        return prep

    def _run(
        self,
        graphs: GraphSequence,
        sample: bool = False,
        prepared: PreparedSequence | None = None,
        node_features: Any = None,
        seed: int | None = None,
    ) -> ModelOutput:
        """Forward pass without gradients; history-node rows removed."""
        self._check_fitted()
        prep = prepared if prepared is not None else self._prepare_for_inference(graphs, node_features)
        generator = None
        if sample:
            generator = torch.Generator(device=self.device_)
            generator.manual_seed(int(seed) if seed is not None else int(np.random.SeedSequence().entropy % 2**63))
        self.module_.eval()
        with torch.no_grad():
            out = self.module_(prep, sample=sample, generator=generator)
        n = prep.n_nodes
        return ModelOutput(
            mu=out.mu[:, :n],
            sigma=out.sigma[:, :n],
            prior_mu=out.prior_mu[:, :n],
            prior_sigma=out.prior_sigma[:, :n],
            z=out.z[:, :n],
            attention=out.attention,
        )

    @_with_thread_policy
    def transform(
        self, graphs: GraphSequence | list, sample: bool = False, node_features: Any = None, seed: int | None = None
    ) -> np.ndarray | list:
        """Node embeddings of every window.

        The recurrence runs from the first window, so ``graphs`` may be longer than the training sequence (same
        nodes; identity / adjacency features need the same node count, other features the same feature size). A
        model with ``"structural"`` features embeds any recording, of any size, including ones it was not trained
        on, without retraining.

        Parameters
        ----------
        graphs : GraphSequence or list of GraphSequence
            The sequence to embed (a list: each one, returned as a list).
        sample : bool, default: False
            False: posterior means (deterministic). True: samples ``mu + sigma * eps``, also fed to the recurrence.
        node_features : array-like or None, default: None
            New feature array for models fitted on array features (default: the training array).
        seed : int or None, default: None
            Seed of the samples when ``sample=True``.

        Returns
        -------
        numpy.ndarray or list of numpy.ndarray
            (n_windows, n_nodes, z_dim), float32. The history node is never included.
        """
        recordings, as_list = self._check_recordings(graphs)
        if as_list and node_features is not None:
            raise ValueError("node_features cannot be given with a list of sequences; transform them one by one.")
        embeddings = []
        for index, g in enumerate(recordings):
            out = self._run(g, sample=sample, node_features=node_features, seed=None if seed is None else seed + index)
            embeddings.append((out.z if sample else out.mu).cpu().numpy())
        return embeddings if as_list else embeddings[0]

    def fit_transform(self, graphs: GraphSequence | list, y: Any = None) -> np.ndarray | list:
        """``fit(graphs).transform(graphs)``."""
        return self.fit(graphs).transform(graphs)

    @_with_thread_policy
    def attention_weights(self, graphs: GraphSequence, node_features: Any = None) -> np.ndarray | None:
        """Attention matrix (n_windows, n_windows) of a (possibly longer) sequence; None without attention."""
        out = self._run(self._check_graphs(graphs), sample=False, node_features=node_features)
        return None if out.attention is None else out.attention.cpu().numpy().astype(np.float64)

    @_with_thread_policy
    def prior_means(self, graphs: GraphSequence, node_features: Any = None) -> np.ndarray:
        """Means of the prior ``p(Z_t | H_{t-1})`` (n_windows, n_nodes, z_dim): the model's one-step forecast."""
        return self._run(self._check_graphs(graphs), sample=False, node_features=node_features).prior_mu.cpu().numpy()

    # ------------------------------------------------------------------ link scores
    @_with_thread_policy
    def score_links(
        self,
        graphs: GraphSequence,
        hidden_fraction: float = 0.15,
        n_prediction_windows: int | None = None,
        seed: int | None = None,
    ) -> dict:
        """VGRNN's intrinsic quality measures: link detection and one-step link prediction.

        Protocol. The last ``n_prediction_windows`` windows are held out. In every other (training) window a fraction
        ``hidden_fraction`` of the undirected edges is hidden, and a new model with this estimator's parameters is
        trained on the reduced graphs (this estimator's fitted state is not changed).

        * Link detection: for each training window, the hidden edges are scored against as many sampled non-edges
          (pairs without an edge in the full graph) with ``sigmoid(mu_i . mu_j)`` from that window's posterior means.
        * Link prediction: the recurrence then runs on into the held-out windows (whose graphs the model never
          trained on); each held-out window t's edges are scored against as many sampled non-edges with the prior
          means of ``p(Z_t | H_{t-1})``, which depend on windows < t only.

        AUC and average precision are computed per window (scikit-learn) and averaged over windows.

        Parameters
        ----------
        graphs : GraphSequence
            Any sequence of at least two windows.
        hidden_fraction : float, default: 0.15
            Fraction of each training window's edges hidden for link detection (VGRNN's protocol).
        n_prediction_windows : int or None, default: None
            Held-out windows for link prediction; None: ``min(3, n_windows // 4)`` (0 disables prediction).
        seed : int or None, default: None
            Seed of the edge split, the non-edge draws and the new model (default: this estimator's ``seed``).

        Returns
        -------
        dict
            ``detection_auc``, ``detection_ap``, ``prediction_auc``, ``prediction_ap`` (floats, NaN when not
            computed) and per-window arrays ``detection_auc_per_window``, ``detection_ap_per_window``,
            ``prediction_auc_per_window``, ``prediction_ap_per_window``, plus ``train_windows`` and
            ``prediction_windows`` (index arrays).
        """
        from sklearn.metrics import average_precision_score, roc_auc_score

        graphs = self._check_graphs(graphs)
        if not 0 < hidden_fraction < 1:
            raise ValueError(f"hidden_fraction must be in (0, 1), got {hidden_fraction}.")
        n_windows, n = len(graphs), graphs.num_nodes
        if n_prediction_windows is None:
            n_prediction_windows = min(3, n_windows // 4)
        n_prediction_windows = int(n_prediction_windows)
        n_train = n_windows - n_prediction_windows
        if n_train < 1:
            raise ValueError(
                f"n_prediction_windows={n_prediction_windows} leaves no training window out of {n_windows}."
            )
        if seed is None:
            seed = self.seed if self.seed is not None else getattr(self, "seed_", None)
        rng = np.random.default_rng(seed)

        def non_edges(t: int, count: int) -> np.ndarray:
            """``count`` distinct node pairs i < j without an edge in window t (fewer if there are not enough)."""
            ei = graphs.edge_index(t)
            existing = np.unique(ei[0] * n + ei[1])
            count = min(count, n * (n - 1) // 2 - existing.size // 2)
            chosen = np.zeros(0, dtype=np.int64)
            while chosen.size < count:
                i = rng.integers(0, n, 2 * count + 16)
                j = rng.integers(0, n, 2 * count + 16)
                keys = np.minimum(i, j) * n + np.maximum(i, j)
                keys = keys[(i != j) & ~np.isin(keys, existing)]
                _, first = np.unique(np.concatenate([chosen, keys]), return_index=True)
                merged = np.concatenate([chosen, keys])[np.sort(first)]  # keep draw order: reproducible
                chosen = merged[:count]
            return np.stack([chosen // n, chosen % n])

        reduced, hidden = [], []
        for t in range(n_windows):
            ei, w = graphs.edge_index(t), graphs.edge_weight(t)
            upper = ei[0] < ei[1]
            und, und_w = ei[:, upper], w[upper]
            if t < n_train:
                n_hide = int(round(hidden_fraction * und.shape[1]))
                perm = rng.permutation(und.shape[1])
                hide, keep = perm[:n_hide], np.sort(perm[n_hide:])
                hidden.append(und[:, hide])
                und, und_w = und[:, keep], und_w[keep]
            reduced.append((np.concatenate([und, und[::-1]], axis=1), np.concatenate([und_w, und_w])))
        reduced_graphs = GraphSequence(
            [r[0] for r in reduced],
            n,
            edge_weights=[r[1] for r in reduced],
            node_features=graphs.node_features,
            node_ids=graphs.node_ids,
            node_labels=graphs.node_labels,
            firing_rates_hz=graphs.firing_rates_hz,
        )
        params = {**self.get_params(), "seed": int(rng.integers(0, 2**31 - 1))}
        features = params["node_features"]
        per_window = not isinstance(features, str) and np.ndim(features) == 3
        if per_window:
            params["node_features"] = np.asarray(features)[:n_train]
        helper = TAVRNN(**params).fit(reduced_graphs[:n_train])
        out = helper._run(reduced_graphs, sample=False, node_features=features if per_window else None)
        mu, prior = out.mu.cpu().numpy(), out.prior_mu.cpu().numpy()

        def scores(emb: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
            if pos.shape[1] == 0 or neg.shape[1] == 0:
                return math.nan, math.nan
            logit = np.concatenate([(emb[pos[0]] * emb[pos[1]]).sum(1), (emb[neg[0]] * emb[neg[1]]).sum(1)])
            label = np.concatenate([np.ones(pos.shape[1]), np.zeros(neg.shape[1])])
            prob = 1.0 / (1.0 + np.exp(-logit))
            return float(roc_auc_score(label, prob)), float(average_precision_score(label, prob))

        det = np.array([scores(mu[t], hidden[t], non_edges(t, hidden[t].shape[1])) for t in range(n_train)])
        pred = []
        for t in range(n_train, n_windows):
            ei = graphs.edge_index(t)
            pos = ei[:, ei[0] < ei[1]]
            pred.append(scores(prior[t], pos, non_edges(t, pos.shape[1])))
        pred = np.array(pred).reshape(-1, 2)

        def mean(x: np.ndarray) -> float:
            x = x[np.isfinite(x)]
            return float(x.mean()) if x.size else math.nan

        return {
            "detection_auc": mean(det[:, 0]),
            "detection_ap": mean(det[:, 1]),
            "prediction_auc": mean(pred[:, 0]),
            "prediction_ap": mean(pred[:, 1]),
            "detection_auc_per_window": det[:, 0],
            "detection_ap_per_window": det[:, 1],
            "prediction_auc_per_window": pred[:, 0],
            "prediction_ap_per_window": pred[:, 1],
            "train_windows": np.arange(n_train),
            "prediction_windows": np.arange(n_train, n_windows),
        }

    # ------------------------------------------------------------------ state, save, load
    def get_state(self) -> tuple[dict, dict]:
        """The fitted model as plain data: JSON-able parameters and numpy arrays (no pickled objects).

        Returns
        -------
        params : dict
            ``format_version``, ``package_version``, ``torch_version``, ``params`` (constructor parameters; an array
            ``node_features`` is replaced by the string "array" and stored in ``arrays``) and ``fitted`` (sizes,
            feature kind, reconstruction mode, seed, epochs run).
        arrays : dict of str to numpy.ndarray
            ``state.<name>`` for every tensor of the module's state_dict, ``loss_history``, ``attention_weights``
            (when attention is on) and ``node_features`` (array features).
        """
        self._check_fitted()
        from . import __version__

        params = self.get_params()
        arrays: dict[str, np.ndarray] = {}
        if not isinstance(params["node_features"], str):
            arrays["node_features"] = np.asarray(params["node_features"], dtype=np.float32)
            params["node_features"] = "array"
        params["device"] = str(params["device"])
        meta = {
            "format_version": FORMAT_VERSION,
            "package_version": __version__,
            "torch_version": torch.__version__,
            "params": params,
            "fitted": {
                "n_features_in": self.n_features_in_,
                "n_nodes": self.n_nodes_,
                "n_windows": self.n_windows_,
                "feature_kind": self.feature_kind_,
                "reconstruction": self.reconstruction_,
                "seed": self.seed_,
                "n_epochs": self.n_epochs_,
                "n_recordings": getattr(self, "n_recordings_", 1),
                "structural_features": list(getattr(self, "structural_features_", None) or []),
            },
        }
        for name, tensor in self.module_.state_dict().items():
            arrays[f"state.{name}"] = tensor.detach().cpu().numpy()
        arrays["loss_history"] = self.loss_history_
        if isinstance(self.attention_weights_, list):
            for index, weights in enumerate(self.attention_weights_):
                arrays[f"attention_weights.{index}"] = weights
        elif self.attention_weights_ is not None:
            arrays["attention_weights"] = self.attention_weights_
        if getattr(self, "structural_features_", None):
            arrays["structural_mean"] = self.structural_mean_
            arrays["structural_scale"] = self.structural_scale_
        return meta, arrays

    @classmethod
    def from_state(cls, params: dict, arrays: dict, device: str | torch.device | None = None) -> "TAVRNN":
        """Rebuild a fitted estimator from :meth:`get_state` output.

        Parameters
        ----------
        params : dict
            The first value returned by :meth:`get_state`.
        arrays : dict of str to numpy.ndarray
            The second value.
        device : str, torch.device or None, default: None
            Where to place the model (None: the saved ``device`` parameter, "auto" resolving to what is available
            now, so a model trained on CUDA loads on a CPU-only machine).

        Returns
        -------
        TAVRNN
        """
        version = params.get("format_version") if isinstance(params, dict) else None
        if version != FORMAT_VERSION:
            raise ValueError(
                f"cannot read a TAVRNN state of format version {version!r} (written by spikeinterface_tavrnn "
                f"{params.get('package_version', 'unknown') if isinstance(params, dict) else 'unknown'}); this "
                f"version reads format {FORMAT_VERSION}. Install the package version that wrote it, or re-fit."
            )
        ctor = dict(params["params"])
        if ctor.get("node_features") == "array":
            ctor["node_features"] = np.asarray(arrays["node_features"])
        est = cls(**ctor)
        cfg = est._config()
        fitted = params["fitted"]
        target = _resolve_device(device if device is not None else cfg["device"])
        if target.type == "cuda" and not torch.cuda.is_available():
            target = torch.device("cpu")
        module = est._build_module(cfg, int(fitted["n_features_in"]), fitted["feature_kind"])
        prefix = "state."
        state = {k[len(prefix) :]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ValueError(f"the saved weights do not match the saved parameters: {err}") from err
        est.module_ = module.to(target).eval()
        est.device_ = target
        est.loss_history_ = np.asarray(arrays["loss_history"], dtype=np.float64)
        aw = arrays.get("attention_weights")
        est.attention_weights_ = None if aw is None else np.asarray(aw, dtype=np.float64)
        n_recordings = int(fitted.get("n_recordings", 1))
        if aw is None and "attention_weights.0" in arrays:
            est.attention_weights_ = [
                np.asarray(arrays[f"attention_weights.{i}"], dtype=np.float64) for i in range(n_recordings)
            ]
        est.n_recordings_ = n_recordings
        est.n_features_in_ = int(fitted["n_features_in"])
        est.n_nodes_ = fitted["n_nodes"] if isinstance(fitted["n_nodes"], list) else int(fitted["n_nodes"])
        est.n_windows_ = fitted["n_windows"] if isinstance(fitted["n_windows"], list) else int(fitted["n_windows"])
        names = fitted.get("structural_features") or []
        est.structural_features_ = tuple(names) if names else None
        if names:
            est.structural_mean_ = np.asarray(arrays["structural_mean"], dtype=np.float32)
            est.structural_scale_ = np.asarray(arrays["structural_scale"], dtype=np.float32)
        est.feature_kind_ = fitted["feature_kind"]
        est.reconstruction_ = fitted["reconstruction"]
        est.seed_ = int(fitted["seed"])
        est.n_epochs_ = int(fitted["n_epochs"])
        est._fit_array = None if "node_features" not in arrays else np.asarray(arrays["node_features"])
        return est

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model to ``path`` as a NumPy ``.npz`` archive (no pickle).

        The archive holds ``__meta__`` (a JSON string: format version, package and torch versions, constructor
        parameters, fitted sizes) and the arrays of :meth:`get_state` (``state.<name>`` weights, ``loss_history``,
        ``attention_weights``, array ``node_features``). The file is written to ``path`` as given.
        """
        meta, arrays = self.get_state()
        payload = {"__meta__": np.array(json.dumps(meta))}
        payload.update(arrays)
        buffer = io.BytesIO()
        np.savez(buffer, **payload)
        with open(path, "wb") as f:
            f.write(buffer.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device | None = None) -> "TAVRNN":
        """Read a model written by :meth:`save` (see :meth:`from_state` for ``device``)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (ValueError, OSError) as err:
            raise ValueError(f"{os.fspath(path)!r} is not a TAVRNN file written by TAVRNN.save: {err}") from err
        if "__meta__" not in arrays:
            raise ValueError(f"{os.fspath(path)!r} is not a TAVRNN file written by TAVRNN.save (no __meta__ entry).")
        meta = json.loads(str(arrays.pop("__meta__")))
        return cls.from_state(meta, arrays, device=device)

    def __repr__(self) -> str:
        defaults = TAVRNN().get_params()
        changed = {k: v for k, v in self.get_params().items() if not _same(v, defaults[k])}
        inner = ", ".join(f"{k}={'array' if isinstance(v, np.ndarray) else repr(v)}" for k, v in changed.items())
        return f"TAVRNN({inner})"

    def __deepcopy__(self, memo):
        new = self.__class__(**copy.deepcopy(self.get_params(), memo))
        for key, value in self.__dict__.items():
            if key not in _PARAM_NAMES:
                setattr(new, key, copy.deepcopy(value, memo))
        return new


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return False
    return a == b


class _Trainer:
    """One training run: the prepared recordings, module, optimiser and samplers; :meth:`step` is one epoch.

    Each recording is cut into chunks of ``bptt_windows`` windows (one chunk without truncation); the recurrent state
    is carried across chunks, detached, and the gradients of all chunks of the recordings of one mini-batch are
    accumulated before the optimiser step. Must be created inside the caller's ``torch.random.fork_rng`` block (it
    seeds the global generator for the module's initialisation).
    """

    def __init__(
        self,
        estimator: TAVRNN,
        recordings: list[GraphSequence] | GraphSequence,
        cfg: dict,
        device: torch.device,
        seed: int,
        as_list: bool = False,
    ):
        if isinstance(recordings, GraphSequence):
            recordings = [recordings]
        self.cfg = cfg
        self.kind = self._resolve_kind(cfg["node_features"], recordings, as_list)
        self.array = cfg["node_features"] if self.kind == "array" else None
        arrays = [self.array] * len(recordings)
        if self.kind == "structural":
            arrays = estimator._fit_structural(recordings)
        else:
            estimator.structural_features_ = None
        self.prepared = [
            estimator._prepare(graphs, cfg, self.kind, array, device) for graphs, array in zip(recordings, arrays)
        ]
        widths = {p.n_features for p in self.prepared}
        if len(widths) > 1:
            raise ValueError(
                f"the recordings give node features of different widths {sorted(widths)}; one model needs one width "
                "(use node_features='structural')."
            )
        self.modes = []
        for prepared in self.prepared:
            mode = cfg["reconstruction"]
            if mode == "auto":
                mode = "dense" if prepared.n_total <= int(cfg["dense_max_nodes"]) else "sampled"
            self.modes.append(mode)
        self.mode = self.modes[0]
        torch.manual_seed(seed)
        self.module = estimator._build_module(cfg, self.prepared[0].n_features, self.kind).to(device)
        self.module.train()
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)
        length = cfg["bptt_windows"]
        self.chunks, self.samplers = [], []
        for r, prepared in enumerate(self.prepared):
            step = int(length) if length is not None else prepared.n_windows
            chunks = [prepared.chunk(a, min(a + step, prepared.n_windows)) for a in range(0, prepared.n_windows, step)]
            self.chunks.append(chunks)
            samplers = []
            for c, chunk in enumerate(chunks):
                if self.modes[r] != "sampled":
                    samplers.append(None)
                    continue
                # the first chunk of the first recording keeps the run's seed (a single untruncated fit is unchanged)
                sub_seed = seed if r == c == 0 else int(np.random.SeedSequence([seed, r, c]).generate_state(1)[0])
                samplers.append(
                    NegativeSampler(chunk.edge_index_with_loops, chunk.n_total, cfg["negative_ratio"], sub_seed)
                )
            self.samplers.append(samplers)
        self.order_rng = np.random.default_rng(seed)
        self.per_step = int(cfg["recordings_per_step"])
        # the fused implementation updates every parameter in one kernel (CPU and CUDA): ~0.2 ms a step against ~1 ms
        fused = device.type in ("cpu", "cuda")
        self.optimizer = torch.optim.Adam(self.module.parameters(), lr=float(cfg["learning_rate"]), fused=fused)
        self.clip = float(cfg["clip_grad_norm"]) if cfg["clip_grad_norm"] else None
        self.kl_weight = float(cfg["kl_weight"])
        self.epoch = 0

    @staticmethod
    def _resolve_kind(node_features: Any, recordings: list[GraphSequence], as_list: bool) -> str:
        if not as_list:
            return resolve_feature_kind(node_features, recordings[0])
        if isinstance(node_features, str) and node_features == "auto":
            return "structural"
        kinds = {resolve_feature_kind(node_features, g) for g in recordings}
        kind = kinds.pop()
        if kind in ("identity", "adjacency", "array"):
            raise ValueError(
                f"node_features={kind!r} ties a model to one node set, so it cannot be trained on a list of "
                "recordings; use node_features='structural' (or 'auto'), or fit one model per recording."
            )
        return kind

    def _accumulate(self, r: int, weight: float = 1.0) -> float:
        """Forward and backward (of ``weight`` x the loss) over every chunk of recording ``r``; returns its loss
        (summed over windows)."""
        state, total = None, 0.0
        chunks = self.chunks[r]
        for c, chunk in enumerate(chunks):
            dense = self.modes[r] == "dense"
            out = self.module(
                chunk, sample=True, generator=self.generator, state=state, precompute_pairwise=dense
            )
            sampler = self.samplers[r][c]
            negatives = sampler.sample() if sampler is not None else None
            loss = TAVRNN._loss(out, chunk, self.modes[r], negatives, self.kl_weight, self.module.cpu_kernels)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"training loss became {loss.item()} at epoch {self.epoch}; lower learning_rate or check the "
                    "input features' scale."
                )
            (loss * weight if weight != 1.0 else loss).backward()
            total += float(loss.detach())
            if c + 1 < len(chunks):
                state = out.state.detach()
        return total

    def step(self) -> float:
        """One epoch: every recording once (forward, backward, clipping and an optimiser step per mini-batch of
        recordings). Returns the loss, averaged over recordings."""
        n = len(self.prepared)
        order = self.order_rng.permutation(n) if n > 1 else np.zeros(1, dtype=np.int64)
        losses = np.zeros(n)
        for first in range(0, n, self.per_step):
            self.optimizer.zero_grad(set_to_none=True)
            batch = order[first : first + self.per_step]
            for r in batch:  # the gradient of the mini-batch's mean loss
                losses[r] = self._accumulate(int(r), 1.0 / len(batch))
            if self.clip is not None:
                nn.utils.clip_grad_norm_(self.module.parameters(), self.clip)
            self.optimizer.step()
        self.epoch += 1
        return float(losses.mean())
