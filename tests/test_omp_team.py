"""The OpenMP team runner (``model.omp_team``): argument tables, teams of several threads, barriers."""

import sys

import numpy as np
import pytest
import torch
from numba import cfunc, types

from spikeinterface_tavrnn.model import omp_team


@cfunc(types.void(types.voidptr))
def _record(data):
    """Each thread writes its team size at its place, waits at the barrier, then copies its right neighbour's
    entry: a missing barrier or a thread that never ran shows as a zero."""
    tb = omp_team.table(data)
    thread, n_threads, at = omp_team.team_position(tb)
    seen = omp_team.i64(tb, 0, 1)
    values = omp_team.f32(tb, 1, 2)
    seen[thread] = n_threads
    for i in range(values.shape[1]):
        values[thread, i] += omp_team.value(tb, 2)
    omp_team.barrier(at)
    seen[n_threads + thread] = seen[(thread + 1) % n_threads]


def _run_record(n_threads, size=4):
    seen = np.zeros(2 * size, dtype=np.int64)
    values = np.zeros((size, 3), dtype=np.float32)
    tb = omp_team.pack(omp_team.Layout(["i8:1", "f4:2", "int"]), [seen, values, 5])
    omp_team.run(_record, tb, n_threads)
    return seen, values


def test_pytorch_openmp_runtime_is_found_where_pytorch_uses_gnu_openmp():
    # the fast path must not silently fall back on the machines CI and users run (Linux wheels of PyTorch)
    info = torch.__config__.parallel_info()
    if not sys.platform.startswith("linux") or "ATen parallel backend: OpenMP" not in info:
        pytest.skip("PyTorch here is not built with OpenMP on Linux")
    assert omp_team._runtime() is not None


def test_calling_thread_alone():
    seen, values = _run_record(1)
    assert seen.tolist() == [1, 1, 0, 0, 0, 0, 0, 0]
    assert values[0].tolist() == [5, 5, 5] and not values[1:].any()


@pytest.mark.parametrize("n_threads", [2, 3, 4])
def test_team_runs_every_thread_once_and_its_barrier_holds(n_threads):
    if omp_team._runtime() is None:
        pytest.skip("no OpenMP runtime of PyTorch here")
    seen, values = _run_record(n_threads)
    assert seen[:n_threads].tolist() == [n_threads] * n_threads  # every thread, each in its place
    assert seen[n_threads : 2 * n_threads].tolist() == [n_threads] * n_threads  # each saw its neighbour's write
    assert (values[:n_threads] == 5).all() and not values[n_threads:].any()


def test_without_the_runtime_everything_runs_on_the_calling_thread(monkeypatch):
    monkeypatch.setattr(omp_team, "_RUNTIME", [None])
    assert omp_team.team_size() == 1
    seen, values = _run_record(3)
    assert seen.tolist() == [1, 1, 0, 0, 0, 0, 0, 0]
    assert values[0].tolist() == [5, 5, 5] and not values[1:].any()


def test_team_size_follows_pytorch_threads_and_limit():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert omp_team.team_size() == 1
        torch.set_num_threads(3)
        expected = 3 if omp_team._runtime() is not None else 1
        assert omp_team.team_size() == expected
        assert omp_team.team_size(limit=2) == min(expected, 2)
        assert omp_team.team_size(limit=1) == 1
    finally:
        torch.set_num_threads(before)


def test_pack_checks_every_argument():
    layout = omp_team.Layout(["f4:2", "i8:1", "int", "bool"])
    good = [np.zeros((2, 3), np.float32), np.zeros(4, np.int64), 7, True]
    tb = omp_team.pack(layout, good)
    assert tb[0] == tb.size and tb[4 + 2 * 5] == 7 and tb[4 + 3 * 5] == 1
    assert tb[4] == good[0].ctypes.data and tb[5:7].tolist() == [2, 3]
    with pytest.raises(ValueError, match="expected 4 arguments"):
        omp_team.pack(layout, good[:3])
    with pytest.raises(TypeError, match="argument 0 must be a float32 array of 2 dimensions, got float64"):
        omp_team.pack(layout, [np.zeros((2, 3)), *good[1:]])
    with pytest.raises(TypeError, match="argument 1 must be a int64 array of 1 dimensions, got int64 array of 2"):
        omp_team.pack(layout, [good[0], np.zeros((2, 2), np.int64), *good[2:]])
    with pytest.raises(ValueError, match="argument 0 must be C-contiguous"):
        omp_team.pack(layout, [np.zeros((3, 2), np.float32).T, *good[1:]])
    with pytest.raises(TypeError, match="argument 2 must be an int"):
        omp_team.pack(layout, [*good[:2], np.zeros(1), good[3]])
    with pytest.raises(ValueError, match="unknown argument code"):
        omp_team.Layout(["f4:5"])
    with pytest.raises(ValueError, match="unknown argument code"):
        omp_team.Layout(["f4"])


@pytest.mark.parametrize("name", ["forward", "backward"])
def test_entry_layouts_follow_the_kernel_signatures(name):
    # the entry points read their tables in the order of these lists: a list out of step with its kernel would
    # hand it the wrong arrays
    import inspect

    from spikeinterface_tavrnn.model import cpu_kernels

    kernel = getattr(cpu_kernels, f"sequence_{name}").py_func
    arguments = getattr(cpu_kernels, f"_{name.upper()}_ARGUMENTS")
    parameters = list(inspect.signature(kernel).parameters)
    assert parameters[:3] == ["thread", "n_threads", "barrier_at"]
    assert [argument for argument, _ in arguments] == parameters[3:]
    layout = getattr(cpu_kernels, f"{name.upper()}_LAYOUT")
    assert layout.codes == tuple(code for _, code in arguments)
    source = inspect.getsource(getattr(cpu_kernels, f"{name}_entry").__wrapped__)
    readers = {"f4": "f32", "i4": "i32", "i8": "i64"}
    for i, (_, code) in enumerate(arguments):  # each argument read at its own index, with its type and rank
        expected = f"value(tb, {i})" if code in ("int", "bool") else f"{readers[code[:2]]}(tb, {i}, {code[3]})"
        assert expected in source, (i, expected)
