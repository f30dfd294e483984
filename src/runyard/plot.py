"""W&B's ``wandb.plot``: charts logged as a table plus a chart spec, stored as W&B stores them.

``run.log({"roc": runyard.plot.roc_curve(y, probs)})`` stores (docs/media.md, "Charts"):

* the chart's data as a ``Table`` under the history key ``<key>_table`` (``roc_table``; with
  ``split_table=True``, ``Custom Chart Tables/<key>_table``), a ``table-file`` reference like
  any logged table; the chart key itself is not in history;
* the chart spec (W&B's ``config._wandb.visualize.<key>``: the Vega spec id, which table
  column plays which role, titles) in the run's ``meta["wandb"]["config"]["visualize"][key]``,
  where the W&B door keeps what the wandb client sends for the same chart.

Runyard's dashboard draws the specs W&B ships (``wandb/line/v0``, ``wandb/area-under-curve/v0``,
...) from the table; another spec id (``plot_table`` with a user's own Vega spec) shows the
table. Importing this module is what turns chart detection on in ``log()`` (the training loop
pays nothing for charts otherwise).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runyard.errors import Error

__all__ = [
    "CustomChart",
    "bar",
    "confusion_matrix",
    "histogram",
    "line",
    "line_series",
    "plot_table",
    "pr_curve",
    "roc_curve",
    "scatter",
    "visualize",
]


@dataclass
class CustomChart:
    """A chart to log: its data table and spec (W&B's ``CustomChart``)."""

    table: Any
    spec_name: str
    fields: dict[str, Any]
    string_fields: dict[str, Any] = field(default_factory=dict)
    split_table: bool = False

    def table_key(self, key: str) -> str:
        return f"Custom Chart Tables/{key}_table" if self.split_table else f"{key}_table"

    def config_value(self, key: str) -> dict[str, Any]:
        """The spec as W&B stores it under ``config._wandb.visualize.<key>``."""
        return {
            "panel_type": "Vega2",
            "panel_config": {
                "panelDefId": self.spec_name,
                "fieldSettings": dict(self.fields),
                "stringSettings": dict(self.string_fields),
                "transform": {"name": "tableWithLeafColNames"},
                "userQuery": {
                    "queryFields": [
                        {
                            "name": "runSets",
                            "args": [{"name": "runSets", "value": "${runSets}"}],
                            "fields": [
                                {"name": "id", "fields": []},
                                {"name": "name", "fields": []},
                                {"name": "_defaultColorIndex", "fields": []},
                                {
                                    "name": "summaryTable",
                                    "args": [{"name": "tableKey", "value": self.table_key(key)}],
                                    "fields": [],
                                },
                            ],
                        }
                    ]
                },
            },
        }


@dataclass
class Visualize:
    """W&B's older ``wandb.visualize(id, table)``: the table under the key itself."""

    table: Any
    spec_name: str

    def config_value(self, key: str) -> dict[str, Any]:
        return {"id": self.spec_name, "historyFieldSettings": {"x-axis": "_step", "key": key}}


def _check_table(table: Any) -> None:
    from runyard.media import Table

    if not isinstance(table, Table):
        raise Error(
            f"runyard.plot: expected a runyard.Table (wandb.Table), got {type(table).__name__}"
        )


def plot_table(
    vega_spec_name: str,
    data_table: Any,
    fields: Mapping[str, Any],
    string_fields: Mapping[str, Any] | None = None,
    split_table: bool = False,
) -> CustomChart:
    """A chart of ``data_table`` drawn by the Vega spec ``vega_spec_name`` (W&B's
    ``plot_table``): ``fields`` maps the spec's roles to the table's columns."""
    _check_table(data_table)
    return CustomChart(
        data_table, vega_spec_name, dict(fields), dict(string_fields or {}), split_table
    )


def visualize(id: str, value: Any) -> Visualize:
    _check_table(value)
    return Visualize(value, id)


def line(
    table: Any,
    x: str,
    y: str,
    stroke: str | None = None,
    title: str = "",
    split_table: bool = False,
) -> CustomChart:
    return plot_table(
        "wandb/line/v0", table, {"x": x, "y": y, "stroke": stroke}, {"title": title}, split_table
    )


def scatter(table: Any, x: str, y: str, title: str = "", split_table: bool = False) -> CustomChart:
    return plot_table("wandb/scatter/v0", table, {"x": x, "y": y}, {"title": title}, split_table)


def bar(
    table: Any, label: str, value: str, title: str = "", split_table: bool = False
) -> CustomChart:
    return plot_table(
        "wandb/bar/v0", table, {"label": label, "value": value}, {"title": title}, split_table
    )


def histogram(table: Any, value: str, title: str = "", split_table: bool = False) -> CustomChart:
    return plot_table("wandb/histogram/v0", table, {"value": value}, {"title": title}, split_table)


def line_series(
    xs: Sequence[Any],
    ys: Sequence[Sequence[Any]],
    keys: Sequence[str] | None = None,
    title: str = "",
    xname: str = "x",
    split_table: bool = False,
) -> CustomChart:
    """Several lines in one chart: ``xs`` shared (one sequence) or one per line."""
    from runyard.media import Table

    xs_list = list(xs)
    ys_list = [list(y) for y in ys]
    if xs_list and (isinstance(xs_list[0], str | bytes) or not isinstance(xs_list[0], Iterable)):
        per_line = [xs_list] * len(ys_list)
    else:
        per_line = [list(x) for x in xs_list]
    if len(per_line) != len(ys_list):
        raise ValueError(
            f"runyard.plot.line_series: {len(per_line)} x-series for {len(ys_list)} y-series"
        )
    names = list(keys) if keys is not None else [f"line_{i}" for i in range(len(ys_list))]
    if len(names) != len(ys_list):
        raise ValueError(f"runyard.plot.line_series: {len(names)} keys for {len(ys_list)} y-series")
    data = [
        [x, names[i], y]
        for i, (xx, yy) in enumerate(zip(per_line, ys_list, strict=False))
        for x, y in zip(xx, yy, strict=False)
    ]
    table = Table(columns=["step", "lineKey", "lineVal"], data=data)
    return plot_table(
        "wandb/lineseries/v0",
        table,
        {"step": "step", "lineKey": "lineKey", "lineVal": "lineVal"},
        {"title": title, "xname": xname},
        split_table,
    )


def confusion_matrix(
    probs: Sequence[Sequence[float]] | None = None,
    y_true: Sequence[Any] | None = None,
    preds: Sequence[Any] | None = None,
    class_names: Sequence[str] | None = None,
    title: str = "Confusion Matrix Curve",
    split_table: bool = False,
) -> CustomChart:
    """Counts of (actual, predicted) class pairs, n_classes² rows (W&B's layout)."""
    import numpy as np

    from runyard.media import Table

    if probs is not None and preds is not None:
        raise ValueError("runyard.plot.confusion_matrix: give probs or preds, not both")
    if probs is not None:
        preds = np.argmax(np.asarray(probs), axis=1).tolist()
    if preds is None or y_true is None:
        raise ValueError("runyard.plot.confusion_matrix: needs y_true and preds (or probs)")
    truth = [_plain(v) for v in y_true]
    predicted = [_plain(v) for v in preds]
    if len(predicted) != len(truth):
        raise ValueError(
            f"runyard.plot.confusion_matrix: {len(predicted)} predictions for "
            f"{len(truth)} true labels"
        )
    if class_names is not None:
        n = len(class_names)
        index: list[Any] = list(range(n))
        for what, values in (("predicted classes", predicted), ("true labels", truth)):
            if len(set(values)) > n:
                raise ValueError(
                    f"runyard.plot.confusion_matrix: more {what} than class names ({n})"
                )
        names = list(class_names)
    else:
        index = sorted(set(predicted) | set(truth))
        n = len(index)
        names = [f"Class_{i + 1}" for i in range(n)]
    position = {value: i for i, value in enumerate(sorted(index))}
    counts = np.zeros((n, n))
    for t, p in zip(truth, predicted, strict=False):
        counts[position[t], position[p]] += 1
    data = [[names[i], names[j], float(counts[i, j])] for i in range(n) for j in range(n)]
    return plot_table(
        "wandb/confusion_matrix/v1",
        Table(columns=["Actual", "Predicted", "nPredictions"], data=data),
        {"Actual": "Actual", "Predicted": "Predicted", "nPredictions": "nPredictions"},
        {"title": title},
        split_table,
    )


def roc_curve(
    y_true: Sequence[Any],
    y_probas: Sequence[Sequence[float]],
    labels: Sequence[str] | None = None,
    classes_to_plot: Sequence[Any] | None = None,
    title: str = "ROC Curve",
    split_table: bool = False,
) -> CustomChart:
    """One ROC curve per class (scikit-learn's points), columns ``class``, ``fpr``, ``tpr``."""
    metrics = _sklearn_metrics("roc_curve")
    truth, probas, classes, chosen = _curve_inputs(y_true, y_probas, classes_to_plot)
    rows: list[list[Any]] = []
    for i in chosen:
        fpr, tpr, _ = metrics.roc_curve(truth, probas[..., i], pos_label=classes[i])
        label = _class_label(classes, i, labels)
        rows.extend(
            [label, round(float(f), 3), round(float(t), 3)] for f, t in zip(fpr, tpr, strict=False)
        )
    return _curve_chart(
        rows,
        ["class", "fpr", "tpr"],
        {"x": "fpr", "y": "tpr", "class": "class"},
        {
            "title": title,
            "x-axis-title": "False positive rate",
            "y-axis-title": "True positive rate",
        },
        split_table,
    )


def pr_curve(
    y_true: Sequence[Any],
    y_probas: Sequence[Sequence[float]],
    labels: Sequence[str] | None = None,
    classes_to_plot: Sequence[Any] | None = None,
    interp_size: int = 21,
    title: str = "Precision-Recall Curve",
    split_table: bool = False,
) -> CustomChart:
    """One precision-recall curve per class, interpolated at ``interp_size`` recall points
    (W&B's method), columns ``class``, ``precision``, ``recall``."""
    import numpy as np

    metrics = _sklearn_metrics("pr_curve")
    truth, probas, classes, chosen = _curve_inputs(y_true, y_probas, classes_to_plot)
    recall_points = np.linspace(0, 1, interp_size)[::-1]
    rows: list[list[Any]] = []
    for i in chosen:
        precision, recall, _ = metrics.precision_recall_curve(
            truth, probas[:, i], pos_label=classes[i]
        )
        precision = np.maximum.accumulate(precision)  # W&B's step: running maximum
        precision, recall = precision[::-1], recall[::-1]
        at = np.searchsorted(recall, recall_points, side="left")
        at = np.minimum(at, len(precision) - 1)
        label = _class_label(classes, i, labels)
        rows.extend(
            [label, round(float(precision[j]), 3), round(float(r), 3)]
            for j, r in zip(at, recall_points, strict=False)
        )
    return _curve_chart(
        rows,
        ["class", "precision", "recall"],
        {"x": "recall", "y": "precision", "class": "class"},
        {"title": title, "x-axis-title": "Recall", "y-axis-title": "Precision"},
        split_table,
    )


# -- helpers -----------------------------------------------------------------------------------

#: W&B's limit on a chart table's rows (``wandb.Table.MAX_ROWS``): larger curves are thinned.
MAX_ROWS = 10_000


def _sklearn_metrics(what: str) -> Any:
    try:
        from sklearn import metrics  # type: ignore[import-untyped]
    except ImportError:
        raise ImportError(
            f"runyard.plot.{what} needs scikit-learn: pip install scikit-learn"
        ) from None
    return metrics


def _curve_inputs(
    y_true: Sequence[Any], y_probas: Sequence[Sequence[float]], classes_to_plot: Any
) -> tuple[Any, Any, Any, list[int]]:
    import numpy as np

    truth = np.asarray(y_true)
    probas = np.asarray(y_probas, dtype=float)
    if probas.ndim != 2 or probas.shape[0] != truth.shape[0]:
        raise ValueError(
            f"runyard.plot: y_probas must be one row of class probabilities per label "
            f"({truth.shape[0]} labels, y_probas has shape {probas.shape})"
        )
    classes = np.unique(truth)
    wanted = classes if classes_to_plot is None else classes_to_plot
    chosen = [int(i) for i in np.where(np.isin(classes, wanted))[0]]
    return truth, probas, classes, chosen


def _class_label(classes: Any, i: int, labels: Sequence[str] | None) -> Any:
    import numpy as np

    value = classes[i]
    if labels is not None and isinstance(value, int | np.integer):
        return labels[int(value)]
    return _plain(value)


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _curve_chart(
    rows: list[list[Any]],
    columns: list[str],
    fields: dict[str, str],
    strings: dict[str, str],
    split_table: bool,
) -> CustomChart:
    from runyard.media import Table

    if len(rows) > MAX_ROWS:
        step = len(rows) / MAX_ROWS
        rows = [rows[int(i * step)] for i in range(MAX_ROWS)]
    return plot_table(
        "wandb/area-under-curve/v0", Table(columns=columns, data=rows), fields, strings, split_table
    )


def pop_charts(data: Mapping[str, Any], on_chart: Any) -> dict[str, Any]:
    """``data`` without its charts (nested ones too, keys joined with ``/``), with each chart's
    table under its W&B key; ``on_chart(key, spec, kind)`` records each spec (``kind``:
    ``"visualize"`` or ``"viz"``). Used by ``Run.log`` once this module is imported."""
    out = dict(data)
    if any(isinstance(v, CustomChart | Visualize | Mapping) for v in data.values()):
        _pop_into(out, out, "", on_chart)
    return out


def _pop_into(top: dict[str, Any], level: dict[str, Any], prefix: str, on_chart: Any) -> None:
    for key in list(level):
        value = level[key]
        path = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, CustomChart):
            del level[key]
            on_chart(path, value.config_value(path), "visualize")
            top[value.table_key(path)] = value.table
        elif isinstance(value, Visualize):
            on_chart(path, value.config_value(path), "viz")
            if prefix:
                del level[key]
                top[path] = value.table
            else:
                level[key] = value.table
        elif isinstance(value, Mapping):
            nested = dict(value)
            level[key] = nested
            _pop_into(top, nested, path, on_chart)
