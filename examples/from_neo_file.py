"""From a Neo file: read spike trains written by any Neo IO, compute connectivity and embeddings without an analyzer.

The example writes a small Neo file (NeoMatlabIO, no extra dependency) from the SynaptiConn hippocampal units
(16 units, ~1000 s, MIT) when ../shared/data is present, else from synthetic trains; then reads it back through
Neo, as you would your own file.

Run: python examples/from_neo_file.py
"""

import tempfile
from pathlib import Path

import neo
import numpy as np
import quantities as pq
import scipy.io

import spikeinterface_tavrnn as st

data_file = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "synapticonn_units" / "all_unit.mat"
if data_file.exists():
    cells = scipy.io.loadmat(data_file)["unit_t"].ravel()
    trains_s = [np.sort(np.asarray(cell, dtype=float).ravel()) for cell in cells]
else:
    rng = np.random.default_rng(0)
    trains_s = [np.sort(rng.uniform(0, 1000, 5000)) for _ in range(16)]
t_stop = max(t[-1] for t in trains_s if t.size) + 0.001

segment = neo.Segment()
for i, times in enumerate(trains_s):
    segment.spiketrains.append(neo.SpikeTrain(times * pq.s, t_stop=t_stop * pq.s, name=f"unit{i}"))
block = neo.Block()
block.segments.append(segment)
path = Path(tempfile.mkdtemp()) / "units.mat"
neo.io.NeoMatlabIO(str(path)).write_block(block)

# --- from here on: what you would do with your own Neo file
block = neo.io.NeoMatlabIO(str(path)).read_block()
spikes = st.SpikeTrains.from_neo(block, sampling_frequency=30_000.0)
print(spikes)
windows = st.sliding_windows(spikes.t_start_s, spikes.t_stop_s, size_s=100.0, step_s=50.0)
connectivity = st.compute_connectivity(spikes, windows, method="sttc", dt_ms=10.0)
graphs = connectivity.to_graphs(density=0.2)
model = st.TAVRNN(z_dim=4, epochs=100, seed=0, verbose=False).fit(graphs)
embeddings = model.transform(graphs)
print("embeddings", embeddings.shape, "final loss", round(float(model.loss_history_[-1]), 3))
