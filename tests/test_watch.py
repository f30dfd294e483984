"""run.watch(): W&B's gradient and parameter histograms of a tiny real torch model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import runyard
from runyard.api import Api

torch = pytest.importorskip("torch")  # in the dev extra (torch==2.13.0, CPU)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RUNYARD_DIR", str(tmp_path))
    monkeypatch.setenv("RUNYARD_CONSOLE", "off")
    monkeypatch.setenv("RUNYARD_DISABLE_STATS", "true")
    return tmp_path


def test_watch_logs_wandbs_histograms_every_log_freq_batches_and_unwatch_removes_them(
    root: Path,
) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    frozen = torch.nn.Linear(2, 1)
    frozen.weight.requires_grad_(False)
    model.append(frozen)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(8, 4), torch.randn(8, 1)
    run = runyard.init(project="watch")
    runyard.watch(model, log="all", log_freq=2)
    grads: dict[int, np.ndarray] = {}
    params: dict[int, np.ndarray] = {}
    for i in range(6):
        if i == 4:
            run.unwatch(model)
            assert not model._forward_hooks and all(
                not p._backward_hooks for p in model.parameters()
            )
        params[i] = model[0].weight.detach().numpy().copy()
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        grads[i] = model[0].weight.grad.numpy().copy()
        opt.step()
        run.log({"loss": loss.item()})
    run.finish()
    rows = list(Api(dir=root).run(run.path).scan_history())
    keyed = [sorted(k for k in r if "/" in k) for r in rows]
    every = [
        "gradients/0.bias",
        "gradients/0.weight",
        "gradients/2.bias",
        "gradients/2.weight",
        "gradients/3.bias",  # 3.weight needs no gradient: no hook
        "parameters/0.bias",
        "parameters/0.weight",
        "parameters/2.bias",
        "parameters/2.weight",
        "parameters/3.bias",
        "parameters/3.weight",
    ]
    assert keyed == [[], every, [], every, [], []]  # every 2nd batch, none after unwatch
    for i in (1, 3):
        grad, param = rows[i]["gradients/0.weight"], rows[i]["parameters/0.weight"]
        assert grad["_type"] == "histogram" and len(grad["values"]) == 64
        assert len(grad["bins"]) == 65 and sum(grad["values"]) == 12
        lo, hi = float(grads[i].min()), float(grads[i].max())
        assert grad["bins"][0] == pytest.approx(lo) and grad["bins"][-1] == pytest.approx(hi)
        want = torch.histc(torch.from_numpy(grads[i]), bins=64, min=lo, max=hi)
        assert grad["values"] == want.tolist()
        assert param["bins"][0] == pytest.approx(float(params[i].min()))
        assert rows[i]["loss"] > 0  # the histograms joined the row the loop committed
    bias = rows[1]["parameters/3.bias"]  # a constant tensor: one bin (W&B)
    assert bias["values"] == [1.0] and bias["bins"][0] == bias["bins"][1]


def test_watch_refuses_what_is_not_a_module_and_needs_a_run(root: Path) -> None:
    with pytest.raises(RuntimeError, match=r"runyard.watch: call runyard.init\(\) first"):
        runyard.watch(torch.nn.Linear(1, 1))
    run = runyard.init(project="watch")
    with pytest.raises(TypeError, match=r"expected a torch\.nn\.Module, got builtins\.dict"):
        run.watch({"not": "a model"})
    with pytest.raises(ValueError, match="log must be 'gradients', 'parameters', 'all' or None"):
        run.watch(torch.nn.Linear(1, 1), log="weights")
    model = torch.nn.Linear(1, 1)
    run.watch(model)
    with pytest.raises(ValueError, match="watched already"):
        run.watch(model)
    run.finish()  # removes the hooks: a backward pass after finish logs nothing, raises nothing
    model(torch.ones(1, 1)).sum().backward()


def test_runyard_does_not_import_torch_unless_given_a_module(tmp_path: Path) -> None:
    code = (
        "import sys, runyard, runyard.media\n"
        "run = runyard.init(project='w', mode='offline')\n"
        "run.log({'x': 1}); run.unwatch(); run.finish()\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"RUNYARD_DIR": str(tmp_path), "RUNYARD_SILENT": "true", "PATH": ""},
        timeout=120,
        check=True,
    )
    assert out.stdout.strip() == "False"
