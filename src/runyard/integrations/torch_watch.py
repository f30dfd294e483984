"""``run.watch(model)``: gradient and parameter histograms of PyTorch modules (W&B's watch).

What it does, as W&B does it (``wandb/integration/torch/wandb_torch.py``):

* ``log="parameters"``: a forward hook on each watched module; every ``log_freq``-th forward
  call logs a 64-bin histogram of each parameter under ``parameters/<name>``;
* ``log="gradients"`` (the default): a hook on each parameter that requires a gradient; every
  ``log_freq``-th backward pass through it logs a histogram of its gradient under
  ``gradients/<name>``; ``log="all"`` does both, ``None`` neither;
* the histograms are logged with ``commit=False``: they join the row that the training loop's
  next ``log()`` commits. ``<name>`` is the parameter's name in ``named_parameters()``; the
  second and later models watched by a run get W&B's prefix ``graph_<i>`` (written without a
  separator, as W&B writes it: ``parameters/graph_1fc.weight``);
* a histogram is ``tensor.histc(64, min, max)`` computed where the tensor lives (GPU tensors
  are not copied to the host), over the finite values; a constant tensor is one bin; sparse
  tensors count their implicit zeros.

torch is never imported by runyard unless a module is passed here (then it is loaded already);
modules are recognised by their class (``torch.nn.Module`` in the MRO), not by ``isinstance``.
Hooks are removed by ``run.unwatch(model)`` / ``run.unwatch()`` and when the run finishes.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runyard.sdk.run import Run

NUM_BINS = 64
LOG_CHOICES = ("gradients", "parameters", "all", None)


def is_torch_module(value: Any) -> bool:
    """Whether ``value`` is a ``torch.nn.Module`` (by its class, without importing torch)."""
    return any(
        c.__name__ == "Module" and c.__module__.startswith("torch.nn.modules")
        for c in type(value).__mro__
    )


def tensor_histogram(tensor: Any) -> tuple[list[float], list[float]] | None:
    """W&B's histogram of a tensor: ``(counts, edges)`` over 64 bins of its finite values, or
    ``None`` when it has none."""
    torch = importlib.import_module("torch")
    t = tensor.detach()
    sparse_zeros = 0
    if t.is_sparse:
        t = t.cpu().coalesce()
        values = t._values()
        sparse_zeros = t.numel() - values.numel()
        t = values
    flat = t.reshape(-1)
    if flat.dtype not in (torch.float32, torch.float64):
        flat = flat.float()  # histc needs float32/64 (W&B upcasts the same way)
    if flat.numel() == 0:
        return None
    finite = torch.isfinite(flat)
    if not bool(finite.all()):
        flat = flat[finite]
        if flat.numel() == 0:
            return None
    tmin = float(flat.min().item())
    tmax = float(flat.max().item())
    if sparse_zeros:
        tmin, tmax = min(tmin, 0.0), max(tmax, 0.0)
    if tmin == tmax:
        counts = [float(flat.numel() + sparse_zeros)]
        return counts, [tmin, tmax]
    try:
        hist = flat.histc(bins=NUM_BINS, min=tmin, max=tmax)
    except RuntimeError:  # a device or dtype without histc: on the host
        hist = flat.cpu().histc(bins=NUM_BINS, min=tmin, max=tmax)
    counts = [float(c) for c in hist.cpu().tolist()]
    step = (tmax - tmin) / NUM_BINS
    edges = [tmin + i * step for i in range(NUM_BINS)] + [tmax]
    if sparse_zeros:
        for i in range(NUM_BINS):
            if (edges[i] <= 0 < edges[i + 1]) or (i == NUM_BINS - 1 and edges[i + 1] == 0):
                counts[i] += sparse_zeros
                break
    return counts, edges


class _Every:
    """Counts calls; true every ``n``-th (W&B's ``log_track_update``)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0

    def __call__(self) -> bool:
        self.count += 1
        if self.count < self.n:
            return False
        self.count = 0
        return True


class TorchWatcher:
    """The hooks a run has on torch modules (``Run.watch``/``Run.unwatch``)."""

    def __init__(self, run: Run) -> None:
        self._run = run
        self._lock = threading.Lock()
        self._hooks: dict[int, tuple[Any, list[Any]]] = {}  # id(model) -> (model, handles)
        self._next_index = 0

    def watch(
        self,
        models: Any,
        criterion: Any = None,
        log: str | None = "gradients",
        log_freq: int = 1000,
        idx: int | None = None,
        log_graph: bool = False,
    ) -> None:
        if log not in LOG_CHOICES:
            raise ValueError(
                f"runyard.watch: log must be 'gradients', 'parameters', 'all' or None, got {log!r}"
            )
        if type(log_freq) is not int or log_freq < 1:
            raise ValueError(f"runyard.watch: log_freq must be an int >= 1, got {log_freq!r}")
        seq: Sequence[Any] = models if isinstance(models, list | tuple) else (models,)
        for model in seq:
            if not is_torch_module(model):
                kind = f"{type(model).__module__}.{type(model).__name__}"
                raise TypeError(f"runyard.watch: expected a torch.nn.Module, got {kind}")
        if log_graph:
            print(
                "runyard.watch: log_graph is not supported (the model graph is not logged); "
                "gradients and parameters are",
                file=sys.__stderr__ or sys.stderr,
            )
        with self._lock:
            for model in seq:
                if id(model) in self._hooks:
                    raise ValueError(
                        f"runyard.watch: this {type(model).__name__} is watched already; "
                        f"call run.unwatch(model) first to watch it with other settings"
                    )
            base = self._next_index if idx is None else idx
            for offset, model in enumerate(seq):
                index = base + offset
                self._next_index += 1
                prefix = f"graph_{index}" if index > 0 else ""
                handles: list[Any] = []
                if log in ("parameters", "all"):
                    handles.append(self._hook_parameters(model, prefix, log_freq))
                if log in ("gradients", "all"):
                    handles.extend(self._hook_gradients(model, prefix, log_freq))
                self._hooks[id(model)] = (model, handles)

    def _log(self, name: str, tensor: Any) -> None:
        from runyard.media import Histogram

        hist = tensor_histogram(tensor)
        if hist is not None and not self._run._finished:
            self._run.log({name: Histogram(np_histogram=hist)}, commit=False)

    def _hook_parameters(self, model: Any, prefix: str, log_freq: int) -> Any:
        every = _Every(log_freq)

        def after_forward(module: Any, inputs: Any, output: Any) -> None:
            if every():
                for name, parameter in module.named_parameters():
                    self._log(f"parameters/{prefix}{name}", parameter)

        return model.register_forward_hook(after_forward)

    def _hook_gradients(self, model: Any, prefix: str, log_freq: int) -> list[Any]:
        handles = []
        for name, parameter in model.named_parameters():
            if not parameter.requires_grad:
                continue
            every = _Every(log_freq)
            key = f"gradients/{prefix}{name}"

            def on_grad(grad: Any, key: str = key, every: _Every = every) -> None:
                if every():
                    self._log(key, grad)

            handles.append(parameter.register_hook(on_grad))
        return handles

    def unwatch(self, models: Any = None) -> None:
        """Remove the hooks of ``models`` (one or a list), or of every watched model."""
        with self._lock:
            if models is None or (isinstance(models, list | tuple) and not models):
                targets = list(self._hooks)
            else:
                seq = models if isinstance(models, list | tuple) else (models,)
                targets = []
                for model in seq:
                    if id(model) in self._hooks:
                        targets.append(id(model))
                    else:
                        print(
                            f"runyard.unwatch: this {type(model).__name__} is not watched",
                            file=sys.__stderr__ or sys.stderr,
                        )
            for key in targets:
                _model, handles = self._hooks.pop(key)
                for handle in handles:
                    handle.remove()

    @property
    def watched(self) -> int:
        return len(self._hooks)
