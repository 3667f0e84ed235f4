"""The :class:`TAVRNN` estimator: its parameters, ``fit``, ``transform`` and what reads a fitted model.

The training loop is :mod:`spikeinterface_tavrnn.training`, saving and loading :mod:`spikeinterface_tavrnn.persistence`,
link scores :func:`spikeinterface_tavrnn.evaluation.score_links`, the torch modules :mod:`spikeinterface_tavrnn.model`.
"""

from __future__ import annotations

import functools
import os
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from .errors import TavrnnInputError
from .graphs import GraphSequence
from .persistence import FORMAT_VERSION

if TYPE_CHECKING:
    import torch

    from .model.features import PreparedSequence
    from .model.tavrnn import ModelOutput

__all__ = ["TAVRNN", "PARITY_PRESET", "FORMAT_VERSION", "SINGLE_THREAD_MAX_NODES"]

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
    "decoder": "inner_product",
    "kl_weight": 1.0,
    "edge_dropout": 0.0,
    "early_stopping": None,
}

#: Graphs up to this many nodes run on one CPU thread with ``num_threads="auto"``.
SINGLE_THREAD_MAX_NODES = 512

_ATTENTION_MODES = ("gated", "published")


@contextmanager
def _torch_threads(num_threads: int | None):
    """Run a block with ``num_threads`` CPU threads in torch (None: leave the setting alone)."""
    import torch

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


class TAVRNN(BaseEstimator):
    """Temporal Attention-enhanced Variational Graph RNN: unsupervised node embeddings of a dynamic graph.

    A variational graph recurrent network (VGRNN: GCN encoder, recurrent prior, link decoder, graph GRU) with
    optional temporal attention over past recurrent states and a history node (``attention=True``; Khajehnejad et
    al., arXiv 2410.00665; Hajiramezanali et al., NeurIPS 2019). See ``shared/TAVRNN_MODEL.md`` for the published
    model, its code's defects and what this implementation does instead. scikit-learn style: the constructor only
    stores parameters.

    Parameters
    ----------
    z_dim : int, default: 8
        Embedding (latent) size k, as published.
    h_dim : int, default: 32
        Recurrent state size d, as published.
    n_layers : int, default: 1
        Graph-GRU layers, as published.
    attention : bool, default: False
        Temporal attention over the recurrent states of past windows (TAVRNN); False gives VGRNN (the paper's
        ablation). Off by default: over 10 seeds it helped significantly on none of the four benchmark tasks, was
        worse for one-step link prediction on DBLP (-0.9 AUC, p 0.04) and doubles the fit time of long sequences
        (docs/results.md, section 8). ``preset="parity"`` is the published TAVRNN.
    attention_mode : {"gated", "published"}, default: "gated"
        With ``attention=True``. "gated": the attended history is mixed into the recurrent state through a learned
        gate that starts near zero, with a readout history node (see :mod:`spikeinterface_tavrnn.model.attention`),
        so the model starts as VGRNN. "published": the attended value replaces the state and the history node is
        wired to every node, as in the authors' code.
    attention_window : int or None, default: None
        Number of attended windows, the current one included; None attends to the whole history (as published).
    history_node : bool, default: True
        Use a history node as the graph summary that queries the attention; it never appears in outputs. Only used
        with ``attention=True``.
    decoder : {"distance", "inner_product"}, default: "distance"
        The link decoder. "distance" (the default): ``sigmoid(r - ||z_i - z_j||^2)`` with a learned offset ``r``;
        groups of units that link only among themselves need a region of the latent space rather than a direction
        of their own, so many such groups (the 48 wells of a plate) stay apart in few dimensions, and Euclidean
        k-means suits the embeddings. "inner_product": ``sigmoid(z_i . z_j)``, as published (and the parity preset).
        Over 10 seeds it was better on the plate's clustering at every DIV (+0.03 to +0.21 ARI) and level on the
        other neural tasks (docs/results.md, section 7); on DBLP link detection it needs ``edge_dropout`` (section 10).
    node_features : {"auto", "identity", "adjacency", "graph", "structural"} or array-like, default: "auto"
        "identity": one-hot node ids (an embedding lookup, no N x N matrix); "adjacency": rows of each window's
        weighted adjacency with diagonal 1; "graph": the ``node_features`` the GraphSequence carries (for
        connectivity graphs the unthresholded ``|r|`` rows, the published DishBrain features); "structural":
        inductive statistics of each node in each window's graph (degree, strength, clustering, connectivity
        profile, firing rate when known; see :mod:`spikeinterface_tavrnn.structural`), standardised with the
        training recordings' statistics, so that one model embeds recordings of any size, including unseen ones;
        an array (N, F) or (T, N, F); "auto": "graph" when the sequence carries features, else "identity" (for a
        list of sequences: "structural").
    use_edge_weight : bool, default: True
        Weigh each edge by its weight (for connectivity graphs its ``|value|``; must be non-negative) in the GCN
        normalisation, so that strong partners count more than weak ones. Over 10 seeds it was better on every neural
        task but the plate's DIV 5 (docs/results.md, section 9); a binary graph gives the same fit either way.
        False: binary graphs, as published (and the parity preset).
    reconstruction : {"auto", "dense", "sampled"}, default: "auto"
        "dense": exact loss over all N^2 pairs (as published, O(N^2) time, memory bounded by blocks); "sampled":
        unbiased estimate from the edges and ``negative_ratio`` times as many sampled non-edges (O(edges));
        "auto": dense up to ``dense_max_nodes`` nodes, sampled above.
    negative_ratio : float, default: 1.0
        Non-edges drawn per positive pair with ``reconstruction="sampled"``.
    dense_max_nodes : int, default: 2048
        Threshold of ``reconstruction="auto"``.
    kl_weight : float, default: 1.0
        Weight of the KL term of the ELBO (1 = the published negative ELBO). Larger values hold each window's
        latents nearer the prior that the previous windows predict; ``kl_weight=10`` helped DBLP link detection
        but cost position decoding and the plate's clustering in pilots (docs/results.md, section 8).
    edge_dropout : float, default: 0.2
        While training, each undirected edge of every window is left out of the graph the model propagates over
        with this probability at every step (DropEdge), while the reconstruction target keeps it: the model learns
        to place a node where its hidden edges point (:mod:`spikeinterface_tavrnn.edge_dropout`). Embeddings use the
        whole graph. 0 trains on the whole graph, as published (and the parity preset); see docs/results.md,
        section 10.
    learning_rate : float, default: 0.01
        Adam learning rate, as published.
    epochs : int, default: 300
        Maximum number of epochs (one epoch = one gradient step on the whole sequence, as published for DishBrain).
    early_stopping : int or None, default: 50
        Stop when the training loss has not improved by more than 1e-4 (relative) for this many epochs; None or 0
        trains for all ``epochs``.
    clip_grad_norm : float or None, default: 10.0
        Clip the gradient norm (VGRNN's value; the published code configured clipping but never applied it).
    train_recurrence : bool, default: False
        Train the graph GRU's weights. False (the default) keeps them at their random initialisation, as the
        published VGRNN and TAVRNN codes do (their GRU weights are never registered with the optimiser); everything
        else (feature layers, encoder, prior, decoder, attention) is trained. A fixed random recurrence acts as a
        regulariser: over 10 seeds on every benchmark task it was at least as good as the trained one, better for
        one-step link prediction on DBLP (+1.9 AUC) and for the plate's electrode clustering at DIV 7 (+0.026 ARI),
        level elsewhere (docs/results.md, section 6). True trains the recurrence too.
    device : str or torch.device, default: "auto"
        "auto" uses CUDA when available, else the CPU.
    seed : int or None, default: 0
        Seeds initialisation, sampling and negative sampling; with a seed, CPU runs are bit-for-bit repeatable in
        any process and CUDA runs agree to rounding (CUDA's sparse products may add in any order).
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
        made such models 10-50 times slower), and torch's own setting above that; None: torch's own setting. On a
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
    >>> TAVRNN(z_dim=4, h_dim=16, epochs=20, seed=0, attention=True).fit(graphs).attention_weights_.shape
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
        attention: bool = False,
        attention_mode: str = "gated",
        attention_window: int | None = None,
        history_node: bool = True,
        decoder: str = "distance",
        node_features: Any = "auto",
        use_edge_weight: bool = True,
        reconstruction: str = "auto",
        negative_ratio: float = 1.0,
        dense_max_nodes: int = 2048,
        kl_weight: float = 1.0,
        edge_dropout: float = 0.2,
        learning_rate: float = 1e-2,
        epochs: int = 300,
        early_stopping: int | None = 50,
        clip_grad_norm: float | None = 10.0,
        train_recurrence: bool = False,
        device: "str | torch.device" = "auto",
        seed: int | None = 0,
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
        self.decoder = decoder
        self.node_features = node_features
        self.use_edge_weight = use_edge_weight
        self.reconstruction = reconstruction
        self.negative_ratio = negative_ratio
        self.dense_max_nodes = dense_max_nodes
        self.kl_weight = kl_weight
        self.edge_dropout = edge_dropout
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.early_stopping = early_stopping
        self.clip_grad_norm = clip_grad_norm
        self.train_recurrence = train_recurrence
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
        if self.num_threads is not None and (
            isinstance(self.num_threads, bool) or int(self.num_threads) != self.num_threads or self.num_threads < 1
        ):
            raise TavrnnInputError(
                f"num_threads must be 'auto', None or a positive integer, got {self.num_threads!r}."
            )
        return self.num_threads

    def _config(self) -> dict:
        """Parameters after the preset, validated."""
        cfg = self.get_params()
        if cfg["preset"] is not None:
            if cfg["preset"] != "parity":
                raise TavrnnInputError(f"preset must be None or 'parity', got {cfg['preset']!r}.")
            cfg.update(PARITY_PRESET)
        for name in ("z_dim", "h_dim", "n_layers", "epochs"):
            value = cfg[name]
            if isinstance(value, bool) or not isinstance(value, (int, np.integer, float)) or int(value) != value or value < 1:
                raise TavrnnInputError(f"{name} must be a positive integer, got {value!r}.")
        if cfg["attention_mode"] not in _ATTENTION_MODES:
            raise TavrnnInputError(
                f"attention_mode must be one of {_ATTENTION_MODES}, got {cfg['attention_mode']!r}."
            )
        window = cfg["attention_window"]
        if window is not None and (isinstance(window, bool) or int(window) != window or window < 1):
            raise TavrnnInputError(f"attention_window must be None or a positive integer, got {window!r}.")
        from .model.losses import DECODERS

        if cfg["decoder"] not in DECODERS:
            raise TavrnnInputError(f"decoder must be one of {DECODERS}, got {cfg['decoder']!r}.")
        if cfg["reconstruction"] not in ("auto", "dense", "sampled"):
            raise TavrnnInputError(
                f"reconstruction must be 'auto', 'dense' or 'sampled', got {cfg['reconstruction']!r}."
            )
        if not cfg["learning_rate"] > 0:
            raise TavrnnInputError(f"learning_rate must be > 0, got {cfg['learning_rate']!r}.")
        if cfg["kl_weight"] < 0:
            raise TavrnnInputError(f"kl_weight must be >= 0, got {cfg['kl_weight']!r}.")
        dropout = cfg["edge_dropout"]
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float, np.number)) or not 0 <= dropout < 1:
            raise TavrnnInputError(f"edge_dropout must be a number in [0, 1), got {dropout!r}.")
        if not cfg["negative_ratio"] > 0:
            raise TavrnnInputError(f"negative_ratio must be > 0, got {cfg['negative_ratio']!r}.")
        if not isinstance(cfg["train_recurrence"], (bool, np.bool_)):
            raise TavrnnInputError(f"train_recurrence must be True or False, got {cfg['train_recurrence']!r}.")
        bptt = cfg["bptt_windows"]
        if bptt is not None and (isinstance(bptt, bool) or int(bptt) != bptt or bptt < 1):
            raise TavrnnInputError(f"bptt_windows must be None or a positive integer, got {bptt!r}.")
        per_step = cfg["recordings_per_step"]
        if isinstance(per_step, bool) or int(per_step) != per_step or per_step < 1:
            raise TavrnnInputError(f"recordings_per_step must be a positive integer, got {per_step!r}.")
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
                raise TavrnnInputError("got an empty list of graph sequences; pass at least one GraphSequence.")
            for index, g in enumerate(graphs):
                if not isinstance(g, GraphSequence):
                    raise TypeError(
                        f"item {index} of the list is a {type(g).__name__}, not a GraphSequence; build one per "
                        "recording with ConnectivitySequence.to_graphs(...) or GraphSequence.from_adjacency(...)."
                    )
            return list(graphs), True
        return [self._check_graphs(graphs)], False

    def _structural(self, graphs: GraphSequence) -> np.ndarray:
        """Standardised structural features of ``graphs`` (T, N, F), with the fitted scaler."""
        from .training import StructuralScaler

        scaler = StructuralScaler(tuple(self.structural_features_), self.structural_mean_, self.structural_scale_)
        return scaler.transform(graphs)

    def _prepare(self, graphs: GraphSequence, cfg: dict, kind: str, array: Any, device: "torch.device"):
        from .training import prepare

        return prepare(graphs, cfg, kind, array, device)

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
        from .training import resolve_device, train

        recordings, as_list = self._check_recordings(graphs)
        cfg = self._config()
        device = resolve_device(cfg["device"])
        seed = int(cfg["seed"]) if cfg["seed"] is not None else int(np.random.SeedSequence().generate_state(1)[0])
        result = train(recordings, cfg, device, seed, as_list)
        self.module_ = result.module
        self.loss_history_ = result.loss_history
        self.n_features_in_ = int(result.prepared[0].n_features)
        nodes, windows = [int(g.num_nodes) for g in recordings], [len(g) for g in recordings]
        self.n_recordings_ = len(recordings)
        self.n_nodes_ = nodes if as_list else nodes[0]
        self.n_windows_ = windows if as_list else windows[0]
        self.feature_kind_ = result.kind
        scaler = result.scaler
        self.structural_features_ = None if scaler is None else scaler.names
        if scaler is not None:
            self.structural_mean_, self.structural_scale_ = scaler.mean, scaler.scale
        modes = sorted(set(result.modes))
        self.reconstruction_ = modes[0] if len(modes) == 1 else "mixed"
        self.device_ = device
        self.seed_ = seed
        self.n_epochs_ = len(result.loss_history)
        self._fit_array = result.array
        attention = []
        for g, prepared in zip(recordings, result.prepared):
            out = self._run(g, sample=False, prepared=prepared)
            attention.append(None if out.attention is None else out.attention.cpu().numpy().astype(np.float64))
        self.attention_weights_ = attention if as_list and attention[0] is not None else attention[0]
        return self

    # ------------------------------------------------------------------ inference
    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise NotFittedError(
                "this TAVRNN is not fitted yet; call fit(graphs) first (or TAVRNN.load(path))."
            )

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
        prepared: "PreparedSequence | None" = None,
        node_features: Any = None,
        seed: int | None = None,
    ) -> "ModelOutput":
        """Forward pass without gradients; history-node rows removed."""
        import torch

        from .model.tavrnn import ModelOutput

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
    def link_logits(self, z_i: np.ndarray, z_j: np.ndarray) -> np.ndarray:
        """Link logits of the fitted decoder for pairs of latent rows.

        Parameters
        ----------
        z_i, z_j : numpy.ndarray (..., z_dim)
            Latent vectors, paired row by row (broadcast).

        Returns
        -------
        numpy.ndarray (...)
            ``z_i . z_j`` (``decoder="inner_product"``) or ``r - ||z_i - z_j||^2`` (``"distance"``); the link
            probability is their sigmoid.
        """
        import torch

        self._check_fitted()
        param = next(self.module_.parameters())
        as_tensor = lambda a: torch.as_tensor(np.asarray(a), dtype=param.dtype, device=param.device)  # noqa: E731
        with torch.no_grad():
            return self.module_.link_logits(as_tensor(z_i), as_tensor(z_j)).cpu().numpy().astype(np.float64)

    def score_links(
        self,
        graphs: GraphSequence,
        hidden_fraction: float = 0.15,
        n_prediction_windows: int | None = None,
        seed: int | None = None,
    ) -> dict:
        """Link detection and one-step link prediction of a new model with these parameters (VGRNN's protocol).

        See :func:`spikeinterface_tavrnn.evaluation.score_links`, which this calls with ``self``.
        """
        from .evaluation.links import score_links

        return score_links(
            self, graphs, hidden_fraction=hidden_fraction, n_prediction_windows=n_prediction_windows, seed=seed
        )

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
        from .persistence import get_state

        self._check_fitted()
        return get_state(self)

    @classmethod
    def from_state(cls, params: dict, arrays: dict, device: "str | torch.device | None" = None) -> "TAVRNN":
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

        Raises
        ------
        TavrnnInputError
            The state is of another format version, incomplete, or holds non-finite weights.
        """
        from .persistence import from_state

        return from_state(cls, params, arrays, device=device)

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model to ``path`` as a NumPy ``.npz`` archive (no pickle).

        The archive holds ``__meta__`` (a JSON string: format version, package and torch versions, constructor
        parameters, fitted sizes) and the arrays of :meth:`get_state`. It is written beside ``path`` and renamed
        over it, so a failed write leaves an existing file as it was.
        """
        from .persistence import save

        self._check_fitted()
        save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, device: "str | torch.device | None" = None) -> "TAVRNN":
        """Read a model written by :meth:`save` (see :meth:`from_state` for ``device``).

        Raises
        ------
        TavrnnInputError
            The file is missing, damaged, of another format version, or holds non-finite weights.
        """
        from .persistence import load

        return load(cls, path, device=device)
