"""Sphinx configuration: MyST pages, the API reference from numpydoc docstrings."""

from __future__ import annotations

import arraylosses

project = "arraylosses"
author = "The arraylosses developers"
copyright = "the arraylosses developers"
version = release = arraylosses.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# verified.md is not a page of its own: verified_against.md includes it.
exclude_patterns = ["_build", "verified.md", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3

autodoc_typehints = "none"  # the numpydoc "Parameters" sections carry the types
numpydoc_show_class_members = False
numpydoc_xref_param_type = False


html_theme = "alabaster"
html_title = f"arraylosses {release}"
html_theme_options = {
    "description": "Focal loss, label smoothing and cross-entropy for every array library",
    "fixed_sidebar": True,
}
