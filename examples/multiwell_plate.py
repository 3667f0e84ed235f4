"""A 48-well MEA plate: do electrode embeddings cluster by well?

Each well of an Axion plate is an independent culture, so electrodes of one well are correlated and electrodes of
different wells are not. One graph sequence over all active electrodes of the plate (EPA plate MW1007-53, Cotterill
et al. 2016, read from ../shared/data) asks whether TAVRNN embeddings separate the wells, the real-data analogue of
the paper's "do embeddings separate chip regions" question, for each day in vitro.

Run: python examples/multiwell_plate.py [DIV ...]
"""

import sys
from pathlib import Path

import numpy as np

import spikeinterface_tavrnn as st
from spikeinterface_tavrnn.evaluation import cluster_nodes

data = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "epa_multiwell_plate53"
if not data.exists():
    sys.exit(f"This example needs the EPA plate recordings in {data}.")
days = sys.argv[1:] or ["07", "14"]
for day in days:
    path = next(data.glob(f"*DIV{int(day):02d}*.h5"))
    spikes = st.SpikeTrains.from_sorting(st.read_sorting(path), label_property="well").active_units(min_spikes=50)
    windows = st.sliding_windows(spikes.t_start_s, spikes.t_stop_s, size_s=300.0, step_s=150.0)
    connectivity = st.compute_connectivity(spikes, windows, method="sttc", dt_ms=10.0, verbose=False)
    graphs = connectivity.to_graphs(density=0.02)  # about the share of pairs inside one of 48 wells
    model = st.TAVRNN(z_dim=8, epochs=150, seed=0, verbose=False).fit(graphs)
    result = cluster_nodes(model.transform(graphs), spikes.unit_labels, n_permutations=20, seed=0)
    print(f"DIV{day}: {spikes.num_units} electrodes in {len(np.unique(spikes.unit_labels))} wells, {len(windows)} windows")
    print("  mean over windows: " + ", ".join(f"{k} {v:.3f}" for k, v in result.mean_scores.items()))
    print("  permutation p:     " + ", ".join(f"{k} {v:.3f}" for k, v in result.mean_p_values.items()))
