"""Planted dynamic graphs for tests: a stochastic block model whose communities change at known windows."""

from __future__ import annotations

import numpy as np

from spikeinterface_tavrnn.graphs import GraphSequence


def dynamic_sbm(
    n_nodes: int = 60,
    n_windows: int = 6,
    n_communities: int = 3,
    change_windows: tuple[int, ...] = (3,),
    p_in: float = 0.3,
    p_out: float = 0.02,
    seed: int = 0,
) -> tuple[GraphSequence, np.ndarray]:
    """Sample a dynamic SBM.

    Communities are balanced; at every window in ``change_windows`` the node-to-community assignment is redrawn
    (a random permutation of the nodes), so the partition changes abruptly there and stays fixed in between.

    Returns
    -------
    graphs : GraphSequence
    labels : numpy.ndarray (n_windows, n_nodes)
        Community of every node in every window.
    """
    rng = np.random.default_rng(seed)
    base = np.arange(n_nodes) % n_communities
    labels = np.empty((n_windows, n_nodes), dtype=np.int64)
    current = rng.permutation(base)
    mats = []
    for t in range(n_windows):
        if t in change_windows:
            current = rng.permutation(base)
        labels[t] = current
        same = current[:, None] == current[None, :]
        prob = np.where(same, p_in, p_out)
        upper = np.triu(rng.random((n_nodes, n_nodes)) < prob, 1)
        mats.append((upper | upper.T).astype(np.float32))
    return GraphSequence.from_adjacency(mats), labels
