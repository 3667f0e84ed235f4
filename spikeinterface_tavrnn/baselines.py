"""Baseline embeddings of a :class:`~spikeinterface_tavrnn.graphs.GraphSequence`, behind one interface.

Every method is called through :func:`embed` so that TAVRNN and its competitors go through the same code path in
:mod:`spikeinterface_tavrnn.evaluation`:

* ``connectivity_pca`` -> (T, d): the upper triangle of each window's weighted adjacency, PCA fitted across windows
  (``level="node"`` -> (T, N, d): each node's adjacency row, PCA fitted across windows and nodes).
* ``graph_stats`` -> (T, 6): history-free graph readouts of each window on its own (density, degree mean / std,
  weight mean / std, transitivity).
* ``spectral`` -> (T, N, d): per-window Laplacian eigenmaps (diffusion-scaled), consecutive windows aligned by
  orthogonal Procrustes.
* ``vgae`` -> (T, N, d): a static variational graph autoencoder (PyG ``VGAE``, 2-layer GCN encoder) trained on each
  window alone, aligned like ``spectral``.
* ``vgrnn`` -> (T, N, d): :class:`~spikeinterface_tavrnn.estimator.TAVRNN` with ``attention=False``.
* ``tavrnn`` -> (T, N, d): TAVRNN with attention over the whole history (as published).
* ``tavrnn_window`` -> (T, N, d): TAVRNN with a finite attention window (``attention_window``, default 3).

All baselines are *transductive* like TAVRNN itself: they are fitted without labels on every window of the
sequence, so a downstream cross-validated classifier compares like with like.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg

__all__ = ["METHODS", "embed", "align_embeddings", "graph_stats", "spectral_embedding_window"]

METHODS = ("connectivity_pca", "graph_stats", "spectral", "vgae", "vgrnn", "tavrnn", "tavrnn_window")

# Above this many nodes the spectral baseline uses a sparse eigensolver instead of a dense one.
_DENSE_EIG_MAX_NODES = 2000


def embed(graphs, method: str, seed: int = 0, dim: int = 8, **kwargs: Any) -> np.ndarray:
    """Embed a graph sequence with one of the baseline methods (or TAVRNN).

    Parameters
    ----------
    graphs : GraphSequence
        The dynamic graph, T windows over N nodes.
    method : str
        One of :data:`METHODS` (see the module docstring).
    seed : int, default: 0
        Seed of every random step (PCA solver, eigensolver start vector, network initialisation, sampling).
    dim : int, default: 8
        Embedding dimension d (``z_dim`` for the TAVRNN family). ``connectivity_pca`` returns fewer components when
        there are fewer windows (or features) than ``dim``.
    **kwargs
        Method options: ``connectivity_pca``: ``source`` ("adjacency" or "features"), ``level`` ("window" or
        "node"); ``spectral``: ``weighted`` (True), ``align`` (True), ``scaling`` ("diffusion"; see
        :func:`spectral_embedding_window`); ``vgae``: ``epochs`` (100), ``hidden`` (32), ``lr`` (0.01), ``weighted``
        (False), ``align`` (True), ``num_threads`` (None: torch's setting; 1 is often much faster for these small
        per-window models on a busy machine); ``vgrnn`` / ``tavrnn`` / ``tavrnn_window``: any :class:`TAVRNN`
        parameter (``epochs``, ``h_dim``, ``attention_window``, ...).

    Returns
    -------
    np.ndarray
        (T, d) window vectors for window-level methods, (T, N, d) node embeddings otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from spikeinterface_tavrnn.graphs import GraphSequence
    >>> a = np.kron(np.eye(2), np.ones((5, 5)))
    >>> graphs = GraphSequence.from_adjacency([a, a, a])
    >>> embed(graphs, "spectral", dim=2).shape
    (3, 10, 2)
    """
    if method == "connectivity_pca":
        return _connectivity_pca(graphs, seed=seed, dim=dim, **kwargs)
    if method == "graph_stats":
        if kwargs:
            raise TypeError(f"graph_stats takes no options, got {sorted(kwargs)}.")
        return graph_stats(graphs)
    if method == "spectral":
        return _spectral(graphs, seed=seed, dim=dim, **kwargs)
    if method == "vgae":
        return _vgae(graphs, seed=seed, dim=dim, **kwargs)
    if method in ("vgrnn", "tavrnn", "tavrnn_window"):
        return _tavrnn_family(graphs, method, seed=seed, dim=dim, **kwargs)
    raise ValueError(f"Unknown method {method!r}; choose one of {METHODS}.")


# ---------------------------------------------------------------------------------------------- raw connectivity
def _connectivity_pca(graphs, seed: int, dim: int, source: str = "adjacency", level: str = "window") -> np.ndarray:
    from sklearn.decomposition import PCA

    if source == "adjacency":
        mats = graphs.to_dense().astype(np.float64)
    elif source == "features":
        if graphs.node_features is None:
            raise ValueError("source='features' needs graphs.node_features; this GraphSequence has none.")
        mats = np.asarray(graphs.node_features, dtype=np.float64)
    else:
        raise ValueError(f"source must be 'adjacency' or 'features', got {source!r}.")
    n_windows, n_nodes = mats.shape[:2]
    if level == "window":
        if mats.shape[1] == mats.shape[2]:
            iu = np.triu_indices(n_nodes, k=1)
            x = mats[:, iu[0], iu[1]]
        else:  # features that are not a square matrix: use all of them
            x = mats.reshape(n_windows, -1)
        n_comp = int(min(dim, x.shape[0], x.shape[1]))
        return PCA(n_components=n_comp, random_state=seed).fit_transform(x).astype(np.float32)
    if level == "node":
        x = mats.reshape(n_windows * n_nodes, mats.shape[2])
        n_comp = int(min(dim, x.shape[0], x.shape[1]))
        z = PCA(n_components=n_comp, random_state=seed).fit_transform(x)
        return z.reshape(n_windows, n_nodes, n_comp).astype(np.float32)
    raise ValueError(f"level must be 'window' or 'node', got {level!r}.")


def graph_stats(graphs) -> np.ndarray:
    """History-free graph-level readouts of each window, shape (T, 6).

    Columns: density, mean degree, degree standard deviation, mean |edge weight|, standard deviation of |edge
    weight|, transitivity (3 x triangles / connected triples). Each window is summarised from its own graph only.

    Parameters
    ----------
    graphs : GraphSequence

    Returns
    -------
    np.ndarray, shape (T, 6)
    """
    out = np.zeros((len(graphs), 6), dtype=np.float64)
    density = graphs.density()
    for t in range(len(graphs)):
        a = graphs.to_scipy(t)
        binary = (a != 0).astype(np.float64)
        deg = np.asarray(binary.sum(axis=1)).ravel()
        w = np.abs(graphs.edge_weight(t).astype(np.float64))
        triangles_x6 = float((binary @ binary).multiply(binary).sum())  # trace(A^3) = 6 x triangles
        triples_x2 = float(np.sum(deg * (deg - 1)))  # 2 x connected triples
        out[t] = [
            density[t],
            deg.mean(),
            deg.std(),
            w.mean() if w.size else 0.0,
            w.std() if w.size else 0.0,
            triangles_x6 / triples_x2 if triples_x2 > 0 else 0.0,
        ]
    return out


# ---------------------------------------------------------------------------------------------- alignment
def align_embeddings(embeddings: np.ndarray) -> np.ndarray:
    """Align each window's node embedding to the previous (already aligned) one by orthogonal Procrustes.

    Per-window embeddings (eigenvectors, independently trained autoencoders) are defined only up to an orthogonal
    transform: eigenvector signs are arbitrary, eigenvalues that swap order between windows permute the axes, and
    a VGAE's latent space is rotation invariant under its inner-product decoder. Without alignment, window t's
    axes mean nothing in window t+1, and any across-window comparison (mean readouts, trajectories) is noise.
    The rotation ``R = argmin ||Z_t R - Z_{t-1}||_F`` over orthogonal R keeps the within-window geometry intact.

    Parameters
    ----------
    embeddings : np.ndarray, shape (T, N, d)

    Returns
    -------
    np.ndarray, shape (T, N, d)
        Window 0 unchanged; window t rotated onto window t-1.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.random.default_rng(0).normal(size=(1, 20, 3))
    >>> q = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]
    >>> aligned = align_embeddings(np.concatenate([z, z @ q]))
    >>> bool(np.allclose(aligned[1], z[0]))
    True
    """
    z = np.array(embeddings, dtype=np.float64, copy=True)
    if z.ndim != 3:
        raise ValueError(f"embeddings must have shape (T, N, d), got {z.shape}.")
    for t in range(1, z.shape[0]):
        if not np.any(z[t]) or not np.any(z[t - 1]):
            continue
        rot, _ = scipy.linalg.orthogonal_procrustes(z[t], z[t - 1])
        z[t] = z[t] @ rot
    return z


# ---------------------------------------------------------------------------------------------- spectral
def spectral_embedding_window(adjacency, dim: int, seed: int = 0, scaling: str = "diffusion") -> np.ndarray:
    """Laplacian eigenmap of one graph (Belkin & Niyogi 2003): the generalised problem ``L v = lambda D v``.

    Solved through the symmetric normalised Laplacian ``L_sym = I - D^-1/2 |A| D^-1/2``: its eigenvectors u with the
    ``dim + 1`` smallest eigenvalues, rescaled ``v = D^-1/2 u``; the first (trivial, constant on a connected graph)
    is dropped. Weights enter as absolute values (a signed Laplacian is not positive semi-definite). Isolated nodes
    get the zero vector. Eigenvector signs are arbitrary: use :func:`align_embeddings` across windows.

    With ``scaling="diffusion"`` (default) each eigenvector is multiplied by ``1 - lambda``, its eigenvalue for the
    random-walk matrix ``D^-1 A``: the coordinates are the diffusion map at time 1 (Coifman & Lafon 2006). Unscaled
    eigenmaps give every eigenvector the same weight, so when ``dim`` exceeds the number of communities the
    eigenvectors of the noise bulk (``lambda`` near 1) swamp the informative ones in any Euclidean analysis
    (k-means, distances); the diffusion weights keep them small.

    Parameters
    ----------
    adjacency : np.ndarray or scipy.sparse matrix, shape (N, N)
        Symmetric weighted adjacency; the diagonal is ignored.
    dim : int
        Number of non-trivial eigenvectors to return.
    seed : int, default: 0
        Seed of the sparse eigensolver's start vector (only used above 2000 nodes).
    scaling : {"diffusion", "none"}, default: "diffusion"
        Weight eigenvectors by ``1 - lambda`` (diffusion map) or not (plain Laplacian eigenmap).

    Returns
    -------
    np.ndarray, shape (N, dim)
        Columns beyond N - 1 are zero.
    """
    if scaling not in ("diffusion", "none"):
        raise ValueError(f"scaling must be 'diffusion' or 'none', got {scaling!r}.")
    a = sp.csr_matrix(abs(sp.csr_matrix(adjacency)))
    a.setdiag(0)
    a.eliminate_zeros()
    out = np.zeros((a.shape[0], dim), dtype=np.float64)
    deg = np.asarray(a.sum(axis=1)).ravel()
    # Isolated nodes are left out: in L_sym each adds a spurious eigenvalue 1 that would use up an output dimension.
    connected = np.flatnonzero(deg > 0)
    n = connected.size
    if n < 2:
        return out
    a = a[connected][:, connected]
    inv_sqrt = 1.0 / np.sqrt(deg[connected])
    d_half = sp.diags(inv_sqrt)
    lap = sp.identity(n, format="csr") - d_half @ a @ d_half
    k = min(dim + 1, n)
    if n <= _DENSE_EIG_MAX_NODES:
        vals, vecs = scipy.linalg.eigh(lap.toarray(), subset_by_index=[0, k - 1])
    else:
        # Smallest eigenvalues of L_sym (spectrum in [0, 2]) are the largest of 2I - L_sym, where Lanczos converges.
        v0 = np.random.default_rng(seed).normal(size=n)
        shifted = 2.0 * sp.identity(n, format="csr") - lap
        vals, vecs = scipy.sparse.linalg.eigsh(shifted, k=k, which="LA", v0=v0)
        order = np.argsort(-vals)
        vals, vecs = 2.0 - vals[order], vecs[:, order]
    v = vecs[:, 1:k] * inv_sqrt[:, None]
    if scaling == "diffusion":
        v = v * (1.0 - vals[1:k])[None, :]
    out[connected, : v.shape[1]] = v
    return out


def _spectral(
    graphs, seed: int, dim: int, weighted: bool = True, align: bool = True, scaling: str = "diffusion"
) -> np.ndarray:
    z = np.zeros((len(graphs), graphs.num_nodes, dim))
    for t in range(len(graphs)):
        a = graphs.to_scipy(t)
        if not weighted:
            a = (a != 0).astype(np.float64)
        z[t] = spectral_embedding_window(a, dim, seed=seed, scaling=scaling)
    return (align_embeddings(z) if align else z).astype(np.float32)


# ---------------------------------------------------------------------------------------------- VGAE
def _vgae(
    graphs,
    seed: int,
    dim: int,
    epochs: int = 100,
    hidden: int = 32,
    lr: float = 0.01,
    weighted: bool = False,
    align: bool = True,
    num_threads: int | None = None,
) -> np.ndarray:
    """Kipf & Welling (2016) VGAE per window: 2-layer GCN encoder, inner-product decoder, one negative per edge."""
    import torch

    z = np.zeros((len(graphs), graphs.num_nodes, dim), dtype=np.float64)
    previous_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(int(num_threads))
    try:
        # fork_rng: seed torch's global generator (initialisation, reparameterisation) without touching the caller's
        # stream. Non-edges come from our own numpy generator: PyG's negative_sampling draws from Python's `random`.
        with torch.random.fork_rng(devices=[]):
            for t in range(len(graphs)):
                z[t] = _vgae_window(graphs, t, seed, dim, epochs, hidden, lr, weighted)
    finally:
        torch.set_num_threads(previous_threads)
    return (align_embeddings(z) if align else z).astype(np.float32)


def _vgae_window(graphs, t: int, seed: int, dim: int, epochs: int, hidden: int, lr: float, weighted: bool):
    import torch
    from torch_geometric.nn import GCNConv, VGAE

    class _Encoder(torch.nn.Module):
        def __init__(self, in_dim: int):
            super().__init__()
            # cached: one model per fixed graph, so the normalised adjacency is computed once.
            self.conv = GCNConv(in_dim, hidden, cached=True)
            self.conv_mu = GCNConv(hidden, dim, cached=True)
            self.conv_logstd = GCNConv(hidden, dim, cached=True)

        def forward(self, x, edge_index, edge_weight=None):
            h = torch.relu(self.conv(x, edge_index, edge_weight))
            return self.conv_mu(h, edge_index, edge_weight), self.conv_logstd(h, edge_index, edge_weight)

    n = graphs.num_nodes
    edges = graphs.edge_index(t)
    if edges.shape[1] == 0:
        return np.zeros((n, dim))  # no edges: nothing to reconstruct, the window keeps the zero embedding
    ei = torch.from_numpy(edges)
    ew = torch.from_numpy(np.abs(graphs.edge_weight(t))) if weighted else None
    if graphs.node_features is not None:
        x = torch.from_numpy(np.asarray(graphs.node_features[t], dtype=np.float32))
    else:
        x = torch.eye(n)
    torch.manual_seed(seed * 100_003 + t)
    rng = np.random.default_rng([seed, t])
    existing = edges[0] * n + edges[1]
    model = VGAE(_Encoder(x.shape[1]))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        opt.zero_grad()
        latent = model.encode(x, ei, ew)
        neg = torch.from_numpy(_sample_non_edges(rng, n, existing, edges.shape[1]))
        loss = model.recon_loss(latent, ei, neg) + model.kl_loss() / n
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        mu, _ = model.encoder(x, ei, ew)  # posterior mean, not a sample
    return mu.numpy()


def _sample_non_edges(rng: np.random.Generator, n: int, existing: np.ndarray, count: int) -> np.ndarray:
    """``count`` ordered pairs (i != j) drawn uniformly, with replacement, among pairs whose key ``i * n + j`` is not
    in ``existing``; shape (2, count)."""
    if n * (n - 1) <= existing.size:
        return np.zeros((2, 0), dtype=np.int64)
    pairs: list[np.ndarray] = []
    found = 0
    while found < count:
        cand = rng.integers(0, n, size=(2, 2 * count + 16))
        keys = cand[0] * n + cand[1]
        ok = (cand[0] != cand[1]) & ~np.isin(keys, existing)
        pairs.append(cand[:, ok])
        found += int(ok.sum())
    return np.concatenate(pairs, axis=1)[:, :count]


# ---------------------------------------------------------------------------------------------- TAVRNN family
def _tavrnn_family(graphs, method: str, seed: int, dim: int, **kwargs: Any) -> np.ndarray:
    from .estimator import TAVRNN  # lazy: the baselines work without the estimator module

    params = {"verbose": False, **kwargs, "z_dim": dim, "seed": seed}
    if method == "vgrnn":
        params["attention"] = False
        params.pop("attention_window", None)
    elif method == "tavrnn":
        if params.get("attention_window") is not None:
            raise ValueError("method='tavrnn' attends to the whole history; use method='tavrnn_window' for a window.")
        params["attention"] = True
    else:
        params["attention"] = True
        params.setdefault("attention_window", 3)
        if params["attention_window"] is None:
            raise ValueError("tavrnn_window needs a finite attention_window; use method='tavrnn' for the full history.")
    model = TAVRNN(**params)
    model.fit(graphs)
    return np.asarray(model.transform(graphs), dtype=np.float32)
