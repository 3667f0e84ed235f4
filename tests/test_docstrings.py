"""The examples in the package's docstrings run and print what they say (numpydoc ``Examples`` sections)."""

import doctest
import importlib
import pkgutil

import pytest

import spikeinterface_tavrnn

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(spikeinterface_tavrnn.__path__, prefix="spikeinterface_tavrnn.")
    if not info.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples of {name} failed"
