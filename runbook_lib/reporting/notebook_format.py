"""nbformat (and so papermill), loaded on first use and without a grammar it never needs.

jsonschema, which nbformat validates notebooks with, builds an RFC 3987 grammar when it is
imported (about 1 s on this project's machines) only to check ``iri`` string formats; the notebook
schema has none. jsonschema treats that package as optional (its ImportError is caught), so the
processes that execute and render reports go without it.
"""

from __future__ import annotations

import sys
from types import ModuleType

__all__ = ["load_nbformat"]

_UNNEEDED = "rfc3987_syntax"


def load_nbformat() -> ModuleType:
    """The nbformat module; call it before importing papermill too."""
    sys.modules.setdefault(_UNNEEDED, None)  # type: ignore[arg-type]  # None: "not installed"
    import nbformat

    return nbformat
