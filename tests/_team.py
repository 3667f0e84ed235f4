"""Test helper: record the team sizes that the compiled kernels run on (``model.omp_team.run``)."""

from spikeinterface_tavrnn.model import omp_team


def record_team_sizes(monkeypatch) -> list:
    """Patch ``omp_team.run`` to append each run's team size to the returned list (and still run it)."""
    sizes = []
    original_run = omp_team.run

    def recorded(entry, tb, n_threads):
        sizes.append(n_threads)
        return original_run(entry, tb, n_threads)

    monkeypatch.setattr(omp_team, "run", recorded)
    return sizes
