"""Shared test fixtures."""

import pytest


@pytest.fixture
def single_thread():
    """One torch / BLAS / OpenMP thread for tiny models: intra-op threads only add synchronisation there, and on a
    shared 2-core machine their spin-waiting made such tests 10-50 times slower."""
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(previous)
