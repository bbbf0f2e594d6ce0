"""nbformat is loaded without the IRI grammar jsonschema would build, and still validates."""

from __future__ import annotations

import subprocess
import sys


def test_notebooks_validate_without_the_iri_grammar_being_built():
    code = (
        "import sys\n"
        "from runbook_lib.reporting.notebook_format import load_nbformat\n"
        "nbformat = load_nbformat()\n"
        "import papermill\n"
        "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('x = 1')])\n"
        "nbformat.validate(nb)\n"
        "bad = nbformat.v4.new_notebook(); bad.cells.append({'cell_type': 'nonsense'})\n"
        "try:\n"
        "    nbformat.validate(bad)\n"
        "except nbformat.ValidationError:\n"
        "    print('invalid refused')\n"
        "print('grammar loaded' if sys.modules.get('rfc3987_syntax') else 'grammar skipped')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["invalid", "refused", "grammar", "skipped"]


def test_papermill_is_loaded_without_pyarrow_which_stays_importable():
    code = (
        "import sys\n"
        "from runbook_lib.reporting.notebook_format import load_papermill\n"
        "papermill = load_papermill()\n"
        "print('pyarrow loaded' if 'pyarrow' in sys.modules else 'pyarrow skipped')\n"
        "print('local-io', type(papermill.iorw.papermill_io.get_handler('out.ipynb')).__name__)\n"
        "import pyarrow.fs\n"
        "print('pyarrow importable')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == [
        "pyarrow", "skipped", "local-io", "LocalHandler", "pyarrow", "importable"
    ]  # fmt: skip
