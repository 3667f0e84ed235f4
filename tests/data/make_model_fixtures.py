"""Write the saved-model fixtures of tests/test_estimator.py::test_saved_models_of_earlier_versions_load.

Run once, with the package version whose saved files must keep loading: it fits small models of several
configurations, saves them (``model_<name>.npz``) and stores the graphs and the embeddings that version computed
(``expected_<name>.npz``). Later versions must load the files and reproduce the embeddings to float32 rounding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spikeinterface_tavrnn.estimator import TAVRNN
from spikeinterface_tavrnn.graphs import GraphSequence

HERE = Path(__file__).parent

CONFIGS = {
    "gated": dict(z_dim=4, h_dim=8, epochs=12, seed=0, num_threads=1),
    "published": dict(z_dim=4, h_dim=8, epochs=12, seed=1, preset="parity", num_threads=1),
    "structural": dict(
        z_dim=3, h_dim=6, epochs=10, seed=2, node_features="structural", attention_window=2, n_layers=2,
        num_threads=1,
    ),
    "vgrnn_sampled": dict(
        z_dim=4, h_dim=8, epochs=10, seed=3, attention=False, node_features="adjacency", reconstruction="sampled",
        num_threads=1,
    ),
}


def adjacency_stack(seed: int, n_nodes: int = 40, n_windows: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_windows):
        upper = np.triu(rng.random((n_nodes, n_nodes)) < 0.12, 1)
        out.append((upper | upper.T).astype(np.float32))
    return np.stack(out)


def main() -> None:
    for index, (name, params) in enumerate(CONFIGS.items()):
        mats = adjacency_stack(100 + index)
        graphs = GraphSequence.from_adjacency(list(mats))
        model = TAVRNN(**params).fit(graphs)
        model.save(HERE / f"model_{name}.npz")
        attention = model.attention_weights(graphs)
        np.savez_compressed(
            HERE / f"expected_{name}.npz",
            adjacency=mats,
            embeddings=model.transform(graphs),
            prior_means=model.prior_means(graphs),
            attention=np.zeros(0) if attention is None else attention,
        )


if __name__ == "__main__":
    main()
