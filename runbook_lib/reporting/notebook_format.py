"""nbformat and papermill, loaded on first use and without what they never need here.

jsonschema, which nbformat validates notebooks with, builds an RFC 3987 grammar when it is
imported (about 1 s on this project's machines) only to check ``iri`` string formats; the notebook
schema has none. jsonschema treats that package as optional (its ImportError is caught), so the
processes that execute and render reports go without it.

papermill imports pyarrow (and with it numpy, about 0.3 s) only for its ``hdfs://`` handler; a
report's notebook and output are local files, so it is imported without (papermill catches the
ImportError and would name the missing extra if an ``hdfs://`` path were ever given). The block
lasts for that import only: pyarrow stays importable for everything else in the process.
"""

from __future__ import annotations

import sys
from types import ModuleType

__all__ = ["load_nbformat", "load_papermill"]

_UNNEEDED = "rfc3987_syntax"
_ONLY_FOR_HDFS = "pyarrow"


def load_nbformat() -> ModuleType:
    """The nbformat module; call it before importing papermill too."""
    sys.modules.setdefault(_UNNEEDED, None)  # type: ignore[arg-type]  # None: "not installed"
    import nbformat

    return nbformat


def load_papermill() -> ModuleType:
    """The papermill module, imported (the first time) without its HDFS handler's pyarrow."""
    load_nbformat()
    if "papermill" in sys.modules or _ONLY_FOR_HDFS in sys.modules:
        import papermill

        return papermill
    sys.modules[_ONLY_FOR_HDFS] = None  # type: ignore[assignment]  # None: "not installed"
    try:
        import papermill
    finally:
        if sys.modules.get(_ONLY_FOR_HDFS, False) is None:
            del sys.modules[_ONLY_FOR_HDFS]
    return papermill
