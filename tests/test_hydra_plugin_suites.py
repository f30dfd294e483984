"""Hydra's own plugin test suites, run against the ``runyard`` sweeper.

``BatchedSweeperTestSuite`` checks that a sweeper launching batches keeps each job's overrides,
config and output folder its own; ``IntegrationTestSuite`` runs small apps as subprocesses with
``-m hydra/sweeper=runyard`` (job names, sweep folders, ``get_original_cwd``...). They are used
exactly as Hydra's example sweeper plugin uses them (hydra repo:
``examples/plugins/example_sweeper_plugin/tests``). Their fixtures (``hydra_sweep_runner``,
``hydra_restore_singletons``) come from Hydra's pytest plugin, which hydra-core registers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.test_utils.launcher_common_tests import (
    BatchedSweeperTestSuite,
    IntegrationTestSuite,
)
from pytest import mark

from hydra_plugins.runyard_sweeper.runyard_sweeper import RunyardSweeper


@pytest.fixture(autouse=True)
def runyard_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every sweep of these tests goes to a store in the test's folder (subprocesses too)."""
    root = tmp_path / "runyard-store"
    monkeypatch.setenv("RUNYARD_DIR", str(root))
    return root


def test_discovery() -> None:
    assert RunyardSweeper.__name__ in [x.__name__ for x in Plugins.instance().discover(Sweeper)]


# Grid search in batches of 2: the suite expects 3 batches of 2 jobs, in grid order, each with
# exactly the overrides of its cell (``group1=file1``, ``bar=100``: nothing else).
@mark.parametrize(
    "launcher_name, overrides",
    [
        (
            "basic",
            [
                "hydra/sweeper=runyard",
                "hydra.sweeper.method=grid",
                "hydra.sweeper.max_batch_size=2",
            ],
        )
    ],
)
class TestRunyardSweeperWithBatching(BatchedSweeperTestSuite): ...


@mark.parametrize(
    "task_launcher_cfg, extra_flags",
    [
        (
            {},
            [
                "-m",
                "hydra/sweeper=runyard",
                "hydra/launcher=basic",
                "hydra/hydra_logging=disabled",
                "hydra/job_logging=disabled",
            ],
        )
    ],
)
class TestRunyardSweeperIntegration(IntegrationTestSuite): ...


def test_plugin_module_imports_no_runyard_machinery() -> None:
    """Hydra imports the plugin module at every app start: it must stay light."""
    import subprocess
    import sys

    code = (
        "import sys, hydra_plugins.runyard_sweeper.runyard_sweeper\n"
        "heavy = [m for m in ('runyard.integrations.hydra.sweeper', 'runyard.store', "
        "'sqlalchemy', 'scipy') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"
