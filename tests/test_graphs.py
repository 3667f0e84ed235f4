import numpy as np
import pytest
import scipy.sparse as sp
import torch

from spikeinterface_tavrnn.graphs import GraphSequence


def _path_graph(n=4):
    a = np.zeros((n, n), dtype=np.float32)
    for i in range(n - 1):
        a[i, i + 1] = a[i + 1, i] = i + 1.0
    return a


class _Win:
    def __init__(self, starts, stops, labels=None):
        self.starts, self.stops, self.labels = np.asarray(starts), np.asarray(stops), labels

    def __len__(self):
        return len(self.starts)


def test_from_adjacency_dense_sparse_3d_agree():
    a = _path_graph()
    b = np.zeros_like(a)
    b[0, 3] = b[3, 0] = 0.5
    g_list = GraphSequence.from_adjacency([a, b])
    g_sparse = GraphSequence.from_adjacency([sp.csr_matrix(a), sp.coo_matrix(b)])
    g_3d = GraphSequence.from_adjacency(np.stack([a, b]))
    for g in (g_list, g_sparse, g_3d):
        assert len(g) == g.num_windows == 2
        assert g.num_nodes == 4
        assert g.num_edges.tolist() == [3, 1]
        np.testing.assert_array_equal(g.to_dense(), np.stack([a, b]))
        assert g.edge_index(0).dtype == np.int64 and g.edge_weight(0).dtype == np.float32
    np.testing.assert_allclose(g_list.density(), [3 / 6, 1 / 6])


def test_unweighted_and_diagonal_dropped():
    a = _path_graph() + np.eye(4, dtype=np.float32)
    g = GraphSequence.from_adjacency([a], weighted=False)
    assert g.num_edges.tolist() == [3]
    assert np.all(g.edge_weight(0) == 1.0)
    ei = g.edge_index(0)
    assert not np.any(ei[0] == ei[1])
    assert np.all(np.diag(g.to_dense(0)) == 0)


def test_edge_list_constructor_sorted_and_default_weights():
    ei = np.array([[1, 0, 2, 1], [0, 1, 1, 2]])
    g = GraphSequence([ei], num_nodes=3)
    np.testing.assert_array_equal(g.edge_index(0), [[0, 1, 1, 2], [1, 0, 2, 1]])
    np.testing.assert_array_equal(g.edge_weight(0), np.ones(4, dtype=np.float32))


def test_self_loops_dropped_from_edge_lists():
    g = GraphSequence([np.array([[0, 0, 1], [0, 1, 0]])], num_nodes=2)
    np.testing.assert_array_equal(g.edge_index(0), [[0, 1], [1, 0]])


def test_asymmetric_error_and_symmetrize():
    ei = np.array([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="symmetrize=True"):
        GraphSequence([ei], num_nodes=3, edge_weights=[np.array([2.0, 4.0])])
    g = GraphSequence([ei], num_nodes=3, edge_weights=[np.array([2.0, 4.0])], symmetrize=True)
    d = g.to_dense(0)
    np.testing.assert_array_equal(d, d.T)
    assert d[0, 1] == 2.0 and d[2, 1] == 4.0
    # both directions with different weights -> mean
    g2 = GraphSequence([np.array([[0, 1], [1, 0]])], 2, edge_weights=[np.array([1.0, 3.0])], symmetrize=True)
    assert g2.to_dense(0)[0, 1] == 2.0 and g2.to_dense(0)[1, 0] == 2.0
    a = np.array([[0, 1.0], [0, 0]])
    with pytest.raises(ValueError, match="not symmetric"):
        GraphSequence.from_adjacency([a])
    assert GraphSequence.from_adjacency([a], symmetrize=True).num_edges.tolist() == [1]


def test_empty_sequence_errors():
    with pytest.raises(ValueError, match="at least one window"):
        GraphSequence([], num_nodes=3)
    with pytest.raises(ValueError, match="empty"):
        GraphSequence.from_adjacency([])


def test_windows_without_edges_allowed():
    g = GraphSequence.from_adjacency([np.zeros((5, 5)), _path_graph(5)])
    assert g.num_edges.tolist() == [0, 4]
    assert g.edge_index(0).shape == (2, 0)
    data = g[0]
    assert data.edge_index.shape == (2, 0) and data.num_nodes == 5
    g2 = GraphSequence([np.zeros((2, 0), dtype=np.int64), []], num_nodes=3)
    assert g2.num_edges.tolist() == [0, 0]


def test_node_count_mismatch():
    with pytest.raises(ValueError, match="same nodes"):
        GraphSequence.from_adjacency([np.zeros((4, 4)), np.zeros((5, 5))])
    with pytest.raises(ValueError, match="square"):
        GraphSequence.from_adjacency([np.zeros((4, 3))])


def test_out_of_range_and_bad_shapes():
    with pytest.raises(ValueError, match="outside 0..2"):
        GraphSequence([np.array([[0, 3], [3, 0]])], num_nodes=3)
    with pytest.raises(ValueError, match="outside"):
        GraphSequence([np.array([[0, -1], [-1, 0]])], num_nodes=3)
    with pytest.raises(ValueError, match=r"shape \(2, E\)"):
        GraphSequence([np.zeros((3, 2), dtype=int)], num_nodes=3)
    with pytest.raises(ValueError, match="duplicate"):
        GraphSequence([np.array([[0, 0, 1, 1], [1, 1, 0, 0]])], num_nodes=3)
    with pytest.raises(ValueError, match="has 1 values"):
        GraphSequence([np.array([[0, 1], [1, 0]])], num_nodes=3, edge_weights=[np.ones(1)])


def test_nan_weights_error():
    a = _path_graph()
    a[0, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        GraphSequence.from_adjacency([a])
    with pytest.raises(ValueError, match="NaN"):
        GraphSequence([np.array([[0, 1], [1, 0]])], 2, edge_weights=[np.array([np.nan, np.nan])])
    s = sp.csr_matrix(_path_graph())
    s.data[0] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        GraphSequence.from_adjacency([s])


def test_feature_shape_checks():
    a = np.stack([_path_graph()] * 3)
    GraphSequence.from_adjacency(a, node_features=np.ones((3, 4, 7)))
    with pytest.raises(ValueError, match="node_features must have shape"):
        GraphSequence.from_adjacency(a, node_features=np.ones((3, 5, 7)))
    with pytest.raises(ValueError, match="node_features must have shape"):
        GraphSequence.from_adjacency(a, node_features=np.ones((2, 4, 7)))
    with pytest.raises(ValueError, match="NaN"):
        GraphSequence.from_adjacency(a, node_features=np.full((3, 4, 2), np.nan))
    with pytest.raises(ValueError, match="node_ids"):
        GraphSequence.from_adjacency(a, node_ids=np.arange(3))
    with pytest.raises(ValueError, match="node_labels"):
        GraphSequence.from_adjacency(a, node_labels=np.arange(5))
    with pytest.raises(ValueError, match="windows has 2"):
        GraphSequence.from_adjacency(a, windows=_Win([0, 1], [1, 2]))


def test_slicing_and_pyg():
    rng = np.random.default_rng(0)
    mats = []
    for _ in range(5):
        m = np.triu(rng.random((6, 6)) < 0.4, 1).astype(np.float32)
        mats.append(m + m.T)
    feats = rng.random((5, 6, 3)).astype(np.float32)
    win = _Win(np.arange(5.0), np.arange(5.0) + 2, labels=np.array(list("abcde")))
    g = GraphSequence.from_adjacency(mats, node_features=feats, node_ids=np.arange(10, 16), windows=win)
    sub = g[1:4]
    assert isinstance(sub, GraphSequence) and len(sub) == 3
    np.testing.assert_array_equal(sub.to_dense(), np.stack(mats[1:4]))
    np.testing.assert_array_equal(sub.node_features, feats[1:4])
    np.testing.assert_array_equal(sub.windows.starts, [1.0, 2.0, 3.0])
    assert list(sub.windows.labels) == ["b", "c", "d"] and len(sub.windows) == 3
    np.testing.assert_array_equal(sub.node_ids, np.arange(10, 16))
    d = g[-1]
    assert torch.equal(d.edge_index, torch.from_numpy(g.edge_index(4)))
    assert torch.equal(d.x, torch.from_numpy(feats[4]))
    assert d.edge_weight.dtype == torch.float32
    datas = g.to_pyg()
    assert len(datas) == 5 and all(x.num_nodes == 6 for x in datas)
    with pytest.raises(IndexError):
        g[5]
    with pytest.raises(ValueError, match="selects no window"):
        g[3:3]
    assert g.to_scipy(2).toarray().tolist() == mats[2].tolist()
