"""Sphinx configuration of the nngsec documentation site (``make docs``).

The pages are the Markdown files of ``docs/`` (MyST) and the API reference generated
from the docstrings of ``nngsec.__all__`` (``api.rst``). ``make docs`` builds it with
warnings as errors (``-W --keep-going``), and ``make test`` runs that build.
"""

from __future__ import annotations

import nngsec

project = "nngsec"
author = "The nngsec authors"
copyright = "the nngsec authors, MIT licence"
release = nngsec.__version__
version = release

extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_heading_anchors = 3  # links such as wire-format.md#replay-window
myst_enable_extensions = ["colon_fence"]

# Every public name reports "nngsec" as its module (nngsec.__init__ sets __module__), so
# the reference documents nngsec.Node, not the private module that defines it.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}

html_theme = "alabaster"
html_title = f"nngsec {release}"
html_static_path: list[str] = []
