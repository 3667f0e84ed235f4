"""From a SpikeInterface sorting: connectivity and TAVRNN embeddings as analyzer extensions.

A sorting with planted assemblies (groups of units that share spikes, whose membership changes halfway through
the recording) is analysed with STTC, and k-means on the embeddings recovers the assemblies of each half.

Run: python examples/from_spikeinterface_sorting.py
"""

import numpy as np
import spikeinterface.core as sc
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

import spikeinterface_tavrnn as st

rng = np.random.default_rng(0)
fs, duration_s, n_units = 30_000.0, 240.0, 16
first_half = np.repeat([0, 1], n_units // 2)       # assembly of each unit before the switch
second_half = np.tile([0, 1], n_units // 2)        # ... and after it
samples, labels = [], []
for unit in range(n_units):
    own = rng.uniform(0, duration_s, size=int(3 * duration_s))
    shared = []
    for start, stop, membership in ((0.0, duration_s / 2, first_half), (duration_s / 2, duration_s, second_half)):
        events = np.sort(np.random.default_rng(membership[unit] + int(start)).uniform(start, stop, 300))
        shared.append(events + rng.normal(0, 0.001, events.size))
    times = np.sort(np.clip(np.concatenate([own, *shared]), 0, duration_s - 1e-3))
    samples.append(np.round(times * fs).astype(np.int64))
    labels.append(np.full(times.size, unit))
order = np.argsort(np.concatenate(samples), kind="stable")
sorting = sc.NumpySorting.from_samples_and_labels(
    [np.concatenate(samples)[order]], [np.concatenate(labels)[order]], fs, unit_ids=np.arange(n_units)
)

analyzer = st.create_analyzer_from_spikes(sorting)
analyzer.compute("functional_connectivity", method="sttc", window_s=40.0, step_s=20.0, dt_ms=5.0, density=0.3)
analyzer.compute("tavrnn_embeddings", z_dim=4, epochs=200, seed=0, verbose=False)
embeddings = analyzer.get_extension("tavrnn_embeddings").get_data()
windows = analyzer.get_extension("functional_connectivity").get_windows()

for t, (start, stop) in enumerate(zip(windows.starts, windows.stops)):
    truth = first_half if stop <= duration_s / 2 else second_half if start >= duration_s / 2 else None
    clusters = KMeans(2, n_init=10, random_state=0).fit_predict(embeddings[t])
    ari = "straddles the switch" if truth is None else f"ARI {adjusted_rand_score(truth, clusters):.2f}"
    print(f"window {start:5.0f}-{stop:5.0f} s: {ari}")
