"""Sphinx configuration of the spikeinterface_tavrnn documentation."""

import spikeinterface_tavrnn

project = "spikeinterface_tavrnn"
author = "spikeinterface_tavrnn developers"
copyright = "2026, spikeinterface_tavrnn developers"
release = spikeinterface_tavrnn.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "results/*.md"]
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_validation_checks = set()
autodoc_typehints = "none"
myst_heading_anchors = 3
html_theme = "sphinx_rtd_theme"
html_title = "spikeinterface_tavrnn"
nitpicky = False
