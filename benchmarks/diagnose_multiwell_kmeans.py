"""Why do k-means clusters of the plate's electrode embeddings trail spectral clustering? (diagnostic, not a protocol)

For the protocol of ``results_multiwell.py`` (same graphs, same embedding calls), each window's node embeddings are
examined with k = number of wells:

* ``raw`` / ``unit``: ARI of k-means (``--n-init`` restarts) on the embeddings, and on unit-length embeddings;
* ``wells init``: ARI of k-means started from the true wells' centroids (Lloyd iterations from there): how well the
  wells are separated in the embedding, whatever k-means' own initialisation finds;
* ``lower inertia``: fraction of windows where k-means' partition has a lower within-cluster sum of squares than the
  wells' own partition; near 1 means k-means is not failing to search, its objective prefers another partition;
* ``collisions``: well pairs per window whose centroid directions have cosine > 0.98;
* ``norm CV``: within-well coefficient of variation of the embedding norms (what unit length removes);
* ``concat unit``: one k-means on each electrode's unit-length embeddings of all windows, concatenated.

Usage::

    python benchmarks/diagnose_multiwell_kmeans.py --days 7 14 --seeds 3
    python benchmarks/diagnose_multiwell_kmeans.py --days 7 14 --seeds 3 --dim 16 --methods tavrnn
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from results_multiwell import DATA, well_collisions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, nargs="+", default=[7, 14])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=["tavrnn", "vgrnn", "vgae"])
    parser.add_argument("--dim", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--vgae-epochs", type=int, default=50)
    parser.add_argument("--n-init", type=int, default=3)
    parser.add_argument("--data", default=str(DATA))
    args = parser.parse_args()
    t_start = time.perf_counter()

    import torch
    from pathlib import Path
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    import spikeinterface_tavrnn as st
    from spikeinterface_tavrnn.baselines import embed

    def unit(z):
        return z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), 1e-12)

    def kmeans(x, k, seed, init="k-means++"):
        with threadpool_limits(limits=1):
            return KMeans(n_clusters=k, n_init=args.n_init if isinstance(init, str) else 1, init=init,
                          random_state=seed).fit(x)

    print(f"dim {args.dim}, epochs {args.epochs} (VGAE {args.vgae_epochs}), k-means n_init {args.n_init}, "
          f"seeds 0-{args.seeds - 1}; means over seeds of window means\n")
    print("| DIV | method | raw | unit | wells init (raw) | wells init (unit) | lower inertia (raw) | collisions | "
          "norm CV | concat unit |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for day in args.days:
        path = next(Path(args.data).glob(f"*DIV{day:02d}*.h5"))
        spikes = st.SpikeTrains.from_sorting(st.read_sorting(path), label_property="well").active_units(min_spikes=50)
        codes = np.unique(np.asarray(spikes.unit_labels), return_inverse=True)[1]
        k = int(codes.max()) + 1
        onehot = np.eye(k)[codes]
        windows = st.sliding_windows(spikes.t_start_s, spikes.t_stop_s, size_s=300.0, step_s=150.0)
        conn = st.compute_connectivity(spikes, windows, method="sttc", dt_ms=10.0, verbose=False)
        graphs = conn.to_graphs(density=0.02, verbose=False)
        for method in args.methods:
            rows = []
            for seed in range(args.seeds):
                if method == "vgae":
                    emb = embed(graphs, "vgae", seed=seed, dim=args.dim, epochs=args.vgae_epochs, num_threads=1)
                else:
                    emb = embed(graphs, method, seed=seed, dim=args.dim, epochs=args.epochs, early_stopping=50)
                emb = np.asarray(emb, dtype=np.float64)
                per = []
                for z in emb:
                    centroids = onehot.T @ z / onehot.sum(axis=0)[:, None]
                    wells_inertia = float(((z - centroids[codes]) ** 2).sum())
                    found = kmeans(z, k, seed)
                    zu = unit(z)
                    norms = np.linalg.norm(z, axis=1)
                    cv = np.mean([norms[codes == c].std() / norms[codes == c].mean() for c in range(k)])
                    per.append([
                        adjusted_rand_score(codes, found.labels_),
                        adjusted_rand_score(codes, kmeans(zu, k, seed).labels_),
                        adjusted_rand_score(codes, kmeans(z, k, seed, init=centroids).labels_),
                        adjusted_rand_score(codes, kmeans(zu, k, seed, init=onehot.T @ zu / onehot.sum(axis=0)[:, None]).labels_),
                        float(found.inertia_ < wells_inertia),
                        cv,
                    ])
                per = np.mean(per, axis=0)
                concat = unit(emb).transpose(1, 0, 2).reshape(emb.shape[1], -1)
                rows.append([*per[:5], well_collisions(emb, codes), per[5],
                             adjusted_rand_score(codes, kmeans(concat, k, seed).labels_)])
            m = np.mean(rows, axis=0)
            print(f"| {day} | {method} | {m[0]:.3f} | {m[1]:.3f} | {m[2]:.3f} | {m[3]:.3f} | {m[4]:.2f} | {m[5]:.1f} | "
                  f"{m[6]:.3f} | {m[7]:.3f} |", flush=True)
    print(f"\nWall time: {time.perf_counter() - t_start:.0f} s.")


if __name__ == "__main__":
    main()
