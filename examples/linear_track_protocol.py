"""The rat linear-track protocol of the TAVRNN paper on the shipped recording.

One window per visit to a track segment (first 20 %, middle, last 20 % of the track), binned Pearson
connectivity, TAVRNN with identity node features, then window classification by segment with grouped
cross-validation and a label-permutation control.

Run: python examples/linear_track_protocol.py
"""

import spikeinterface_tavrnn as st
from spikeinterface_tavrnn.evaluation import classify_windows, window_vectors

sorting, position = st.load_linear_track()
windows = st.linear_track_visit_windows(position)
spikes = st.SpikeTrains.from_sorting(sorting)
connectivity = st.compute_connectivity(spikes, windows, method="pearson", bin_ms=25.0)
graphs = connectivity.to_graphs(density=0.15)
model = st.TAVRNN(z_dim=8, node_features="identity", epochs=100, seed=0).fit(graphs)
embeddings = model.transform(graphs)
result = classify_windows(window_vectors(embeddings, readout="flat"), windows.labels, n_permutations=100, seed=0)
print(f"{len(windows)} visits, chance {result.chance:.3f}")
for name, value in result.scores.items():
    print(f"{name:>18s} {value:.3f}  (permutation p = {result.p_values[name]:.3f})")
