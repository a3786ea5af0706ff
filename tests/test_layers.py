"""The architecture's map (pyproject.toml, [tool.importlinter]) is checked with the suite: an
upward import between apps, or a Tocsin import in the stdlib-only client, fails CI."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    # PYTHONPATH first, so that `apps` is the tree under `root`, not the installed one.
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def copy_of_the_tree(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "apps", tmp_path / "apps", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_import_contracts_are_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_an_upward_import_breaks_the_layers_contract(tmp_path):
    tree = copy_of_the_tree(tmp_path)
    sweeper = tree / "apps" / "checks" / "sweeper.py"
    sweeper.write_text(sweeper.read_text() + "\nfrom apps.incidents import services  # noqa\n")

    result = lint_imports(tree)

    assert result.returncode != 0
    assert "apps.checks is not allowed to import apps.incidents" in result.stdout
    assert "apps.checks.sweeper -> apps.incidents.services" in result.stdout


def test_an_upward_import_hidden_in_a_function_breaks_it_too(tmp_path):
    tree = copy_of_the_tree(tmp_path)
    engine = tree / "apps" / "escalation" / "engine.py"
    engine.write_text(
        engine.read_text()
        + "\n\ndef _sneaky():\n    from apps.notifications.dispatch import notify  # noqa\n"
    )

    result = lint_imports(tree)

    assert result.returncode != 0
    assert "apps.escalation is not allowed to import apps.notifications" in result.stdout


def test_the_client_may_not_import_django(tmp_path):
    tree = copy_of_the_tree(tmp_path)
    cli = tree / "apps" / "client" / "cli.py"
    cli.write_text(cli.read_text() + "\nimport django  # noqa\n")

    result = lint_imports(tree)

    assert result.returncode != 0
    assert "apps.client is not allowed to import django" in result.stdout
