"""The package's layering: networks import nothing of the rest of genlab."""

import ast
from pathlib import Path

import genlab.nets


def test_nets_import_nothing_of_genlab():
    offenders = []
    for path in Path(genlab.nets.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            offenders += [f"{path.name}: {n}" for n in names if n == "genlab" or n.startswith("genlab.")]
    assert offenders == []
