"""sweep.yaml validation: every problem at once, with its key path and the fix."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from runyard.sweeps.config import (
    MetricSpec,
    SweepConfig,
    SweepConfigError,
    SweepConfigWarning,
    load_sweep_config,
)
from runyard.sweeps.space import nest

SEED = """\
program: main.py
method: bayes
metric: {goal: maximize, name: test/accuracy}
parameters:
  dataset: {values: [mnist, cifar10]}
command: ["${env}", python, "${program}", "${args_no_hyphens}"]
"""


def write(tmp_path: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems(doc: Any) -> list[str]:
    with pytest.raises(SweepConfigError) as info:
        load_sweep_config(doc)
    return info.value.problems


def base(**parameters: Any) -> dict[str, Any]:
    return {"program": "train.py", "method": "random", "parameters": parameters}


def test_seed_sweep_yaml_validates(tmp_path: Path) -> None:
    config = load_sweep_config(write(tmp_path, SEED))
    assert isinstance(config, SweepConfig)
    assert config.program == "main.py" and config.method == "bayes"
    assert config.metric == MetricSpec(name="test/accuracy", goal="maximize")
    assert config.command == ["${env}", "python", "${program}", "${args_no_hyphens}"]
    assert [p.name for p in config.parameters] == ["dataset"]
    assert config.parameters["dataset"].values == ("mnist", "cifar10")
    assert config.raw["metric"] == {"goal": "maximize", "name": "test/accuracy"}
    assert config.warnings == []
    assert config.early_terminate is None and config.run_cap is None
    # the same document as a dict, and as JSON
    assert load_sweep_config(config.raw).parameters == config.parameters
    json_path = tmp_path / "sweep.json"
    json_path.write_text(json.dumps(config.raw))
    assert load_sweep_config(json_path).raw == config.raw


def test_a_full_config() -> None:
    config = load_sweep_config(
        {
            "program": "train.py",
            "method": "random",
            "name": "lr search",
            "description": "d",
            "project": "p",
            "entity": "e",
            "metric": {"name": "loss", "target": 0.1},
            "run_cap": 20,
            "early_terminate": {"type": "hyperband", "min_iter": 3},
            "parameters": {"lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1}},
        }
    )
    assert config.metric == MetricSpec(name="loss", goal="minimize", target=0.1)
    assert (config.name, config.description, config.project, config.entity) == (
        "lr search",
        "d",
        "p",
        "e",
    )
    assert config.run_cap == 20
    assert config.early_terminate == {"type": "hyperband", "min_iter": 3}
    assert config.command is None
    assert config.effective_command == ["${env}", "${interpreter}", "${program}", "${args}"]


def test_int_uniform_on_zero_one_warns() -> None:
    """W&B infers int_uniform from integer bounds: {min: 0, max: 1} is a coin flip."""
    with pytest.warns(SweepConfigWarning, match=r"parameters\.dropout: min and max are integers"):
        config = load_sweep_config(base(dropout={"min": 0, "max": 1}))
    assert config.parameters["dropout"].grid_values() == [0, 1]


@pytest.mark.parametrize(
    ("spec", "distribution"),
    [
        ({"value": 3}, "constant"),
        ({"value": None}, "constant"),
        ({"values": [1, 2]}, "categorical"),
        ({"values": [1, 2], "probabilities": [0.5, 0.5]}, "categorical"),
        ({"min": 1, "max": 10}, "int_uniform"),
        ({"min": 0.0, "max": 1.0}, "uniform"),
        ({"min": 0, "max": 1.5}, "uniform"),
        ({"min": 0.5, "max": 2}, "uniform"),
    ],
)
def test_inference_rules(spec: dict[str, Any], distribution: str) -> None:
    config = load_sweep_config(base(x=spec))
    assert config.parameters["x"].distribution == distribution


def test_mu_and_sigma_do_not_imply_normal_as_in_w_and_b() -> None:
    (problem,) = problems(base(x={"mu": 0, "sigma": 1}))
    assert problem.startswith("parameters.x: does not say what to sample")
    assert "Fix: add distribution: normal" in problem


def test_yaml_exponent_floats_are_numbers(tmp_path: Path) -> None:
    """PyYAML (YAML 1.1) reads 1e-4 as a string; runyard reads it as a number."""
    path = write(
        tmp_path,
        """\
        program: t.py
        method: random
        parameters:
          lr: {distribution: log_uniform_values, min: 1e-5, max: 1e-1}
        """,
    )
    assert load_sweep_config(path).parameters["lr"].min == 1e-5


BAD = """\
progam: train.py
method: grid
metric:
  name: val_loss
  goal: maximise
parameters:
  lr:
    distribution: log_uniform_values
    min: 0
    max: 0.1
  epochs: {min: 10, max: 5}
  batch_size: [32, 64]
  optimizer:
    parameters:
      name: {valeus: [adam, sgd]}
      momentum: {min: 0.5, max: 0.9, q: 0.1}
      lr: {distribution: uniform, min: 0.1, max: 0.01}
      wd: {distribution: log_uniform_values, min: 1.0e-6, max: 1.0e-2}
  act: {values: [relu, gelu], probabilities: [0.5, 0.6]}
  drop: {distribution: q_uniform, min: 0, max: 0.5, q: -0.1}
  noise: {distribution: gausian}
  width: {distribution: int_uniform, min: 1.0, max: 8}
  seed: {value: 1, values: [1, 2]}
command: ["${env}", "${interpeter}", "${program}", "--cfg=${args}", 5]
early_terminate: {type: hyperband, eta: 1}
run_cap: 0
"""

EXPECTED = [
    "progam: unknown key. Fix: did you mean `program`?",
    'metric.goal: must be minimize or maximize, got "maximise". Fix: did you mean `maximize`?',
    "parameters.lr.min: must be greater than 0 for log_uniform_values (a log scale), got 0. "
    "Fix: use a positive min, e.g. min: 1e-5",
    "parameters.epochs.min: 10 is not less than max (5). Fix: swap min and max",
    "parameters.batch_size: must be a mapping (a parameter spec), got [32, 64]. "
    "Fix: write batch_size: {values: [32, 64]}",
    "parameters.optimizer.parameters.name.valeus: unknown key. Fix: did you mean `values`?",
    "parameters.optimizer.parameters.momentum.q: is not used by uniform (inferred from min and "
    "max). Fix: set distribution: q_uniform to quantize, or remove q",
    "parameters.optimizer.parameters.lr.min: 0.1 is not less than max (0.01). "
    "Fix: swap min and max",
    "parameters.optimizer.parameters.wd: method grid needs a finite set of values, but "
    "log_uniform_values is continuous. Fix: list the values to try (values: [...]), or use "
    "int_uniform or q_uniform (with q), or use method random or bayes",
    "parameters.act.probabilities: sum to 1.1, not 1. Fix: scale them so they add up to 1",
    "parameters.drop.q: must be greater than 0, got -0.1. Fix: e.g. q: 0.1",
    'parameters.noise.distribution: unknown distribution "gausian". Fix: did you mean normal?',
    "parameters.width.min: must be an integer for int_uniform, got 1.0. Fix: write min: 1 "
    "(without a decimal point), or use distribution: uniform for real values",
    "parameters.seed.values: is not used by a constant (inferred from `value`). "
    "Fix: give either `value` (a constant) or `values` (a choice), not both",
    'command[1]: unknown macro ${interpeter} in "${interpeter}". Fix: did you mean '
    "${interpreter}? the macros are ${env}, ${interpreter}, ${program}, ${args}, "
    "${args_no_hyphens}, ${args_no_boolean_flags}, ${args_json}, ${args_json_file}, "
    "${args_hydra}, ${envvar:NAME} (write $${ for a literal ${)",
    "command[3]: ${args} expands to several arguments, so it must be an item of its own, not "
    'part of "--cfg=${args}". Fix: put "${args}" on its own, or use ${args_json} / '
    "${args_json_file} inside a larger argument",
    'command[4]: must be a string, got 5. Fix: quote it: "5"',
    "run_cap: must be a positive integer, got 0. Fix: e.g. run_cap: 50, or remove it for no limit",
    "early_terminate.eta: must be at least 2, got 1. Fix: use eta: 2 (keep the top half) or "
    "more, e.g. eta: 3",
]


def test_every_problem_of_a_bad_sweep_yaml_at_once(tmp_path: Path) -> None:
    with pytest.raises(SweepConfigError) as info:
        load_sweep_config(write(tmp_path, BAD))
    found = info.value.problems
    for expected in EXPECTED:
        assert expected in found, f"missing: {expected}\n\nfound:\n" + "\n".join(found)
    assert len(found) == len(EXPECTED), "\n".join(found)
    assert str(info.value) == "\n".join(found)  # one problem per line
    assert isinstance(info.value, ValueError)


def test_every_problem_names_its_key_path_and_fix(tmp_path: Path) -> None:
    with pytest.raises(SweepConfigError) as info:
        load_sweep_config(write(tmp_path, BAD))
    for problem in info.value.problems:
        path, _, rest = problem.partition(": ")
        assert path and " " not in path, problem
        assert ". Fix: " in rest, problem


def test_deprecated_distributions_warn() -> None:
    doc = base(
        lr={"distribution": "log_uniform", "min": -9.21, "max": -2.3},
        b={"distribution": "q_log_uniform", "min": 0, "max": 5, "q": 1},
        c={"distribution": "inv_log_uniform", "min": 1, "max": 2},
    )
    with pytest.warns(SweepConfigWarning) as record:
        config = load_sweep_config(doc)
    assert len(config.warnings) == 3 == len(record)
    lr, b, c = config.warnings
    assert lr.startswith("parameters.lr: distribution log_uniform is deprecated")
    assert "Use log_uniform_values" in lr and "min: 0.000100" in lr and "max: 0.100259" in lr
    assert "Use q_log_uniform_values" in b
    assert "Use inv_log_uniform_values" in c
    assert config.parameters["lr"].distribution == "log_uniform"  # still accepted


def test_unknown_macro_is_an_error_that_lists_the_macros() -> None:
    doc = {**base(x={"value": 1}), "command": ["${program}", "${args_jsn}", "${envvar:HOME}"]}
    (problem,) = problems(doc)
    assert problem.startswith("command[1]: unknown macro ${args_jsn}")
    assert "did you mean ${args_json}?" in problem
    assert "${args_hydra}" in problem and "${envvar:NAME}" in problem


def test_hydra_interpolations_and_escapes_are_not_macros() -> None:
    doc = {**base(x={"value": 1}), "command": ["${program}", "hydra.run.dir=${now:%H}", "$${x}"]}
    assert load_sweep_config(doc).command == ["${program}", "hydra.run.dir=${now:%H}", "$${x}"]


def test_command_must_be_a_list_of_strings() -> None:
    (problem,) = problems({**base(x={"value": 1}), "command": "python train.py ${args}"})
    assert problem == (
        "command: must be a list of strings, got a string. Fix: write it as a list: "
        'command: ["python", "train.py", "${args}"]'
    )


def test_program_is_required_by_the_default_command_and_by_program_macro() -> None:
    doc = {"method": "random", "parameters": {"x": {"value": 1}}}
    (problem,) = problems(doc)
    assert problem.startswith("program: is missing, and the default command")
    (problem,) = problems({**doc, "program": None})
    assert problem.startswith("program: is missing, and the default command")
    (problem,) = problems({**doc, "command": ["python", "${program}"]})
    assert problem.startswith("program: is missing, but `command` uses ${program}")
    config = load_sweep_config({**doc, "command": ["python", "-m", "pkg.train", "${args}"]})
    assert config.program is None


def test_bayes_requires_a_metric() -> None:
    (problem,) = problems({**base(x={"min": 0.0, "max": 1.0}), "method": "bayes"})
    assert problem.startswith("metric: is missing, and method bayes needs a metric")


def test_early_terminate_needs_a_metric_and_is_validated() -> None:
    doc = {**base(x={"value": 1}), "early_terminate": {"type": "hyperband", "min_iter": 3}}
    assert problems(doc) == [
        "metric: is missing, and early_terminate needs a metric to judge runs by. Fix: add "
        "metric: {name: <a metric your program logs>, goal: minimize} (or maximize), or remove "
        "early_terminate"
    ]
    doc["metric"] = {"name": "loss"}
    doc["early_terminate"] = {"type": "hyperband", "max_iter": 27}
    (problem,) = problems(doc)
    assert problem.startswith("early_terminate.s: is required with max_iter")
    doc["early_terminate"] = {"type": "hyperband", "max_iter": 27, "s": 2, "eta": 3}
    assert load_sweep_config(doc).early_terminate == doc["early_terminate"]


def test_grid_with_continuous_parameters_names_each_and_the_fix() -> None:
    doc = {
        **base(
            lr={"min": 0.0, "max": 1.0},
            mom={"distribution": "normal"},
            steps={"distribution": "q_normal", "q": 1},
            ok={"values": [1, 2]},
        ),
        "method": "grid",
    }
    lr, mom, steps = problems(doc)
    assert lr.startswith("parameters.lr: method grid needs a finite set of values, but uniform")
    assert "Fix: list the values to try (values: [...]), or use int_uniform or q_uniform" in lr
    assert mom.startswith("parameters.mom: method grid needs a finite set of values, but normal")
    assert steps.startswith("parameters.steps:") and "q_normal is unbounded" in steps


def test_grid_with_quantized_parameters() -> None:
    doc = {
        **base(
            drop={"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.25},
            width={"min": 1, "max": 3},
            act={"values": ["relu", "gelu"], "probabilities": [0.9, 0.1]},
        ),
        "method": "grid",
    }
    with pytest.warns(SweepConfigWarning, match="probabilities are ignored by method grid"):
        config = load_sweep_config(doc)
    assert config.parameters["drop"].grid_values() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert config.parameters.grid_size() == 5 * 3 * 2


def test_nested_parameters_flatten_and_nest_back(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        program: train.py
        method: random
        parameters:
          epochs: {value: 5}
          optimizer:
            parameters:
              name: {values: [adam, sgd]}
              schedule:
                parameters:
                  warmup: {min: 0, max: 100}
          model.depth: {values: [2, 4]}
        """,
    )
    config = load_sweep_config(path)
    names = [p.name for p in config.parameters]
    assert names == ["epochs", "optimizer.name", "optimizer.schedule.warmup", "model.depth"]
    params = config.parameters.sample(__import__("numpy").random.default_rng(0))
    nested = nest(params)
    assert nested["epochs"] == 5 and nested["optimizer"]["name"] in ("adam", "sgd")
    assert 0 <= nested["optimizer"]["schedule"]["warmup"] <= 100
    assert nested["model"]["depth"] in (2, 4)


def test_nested_block_errors_name_the_nested_path() -> None:
    doc = base(
        optimizer={
            "parameters": {"lr": {"min": 0.1, "max": 0.01}, "inner": {"parameters": {}}},
            "values": [1],
        }
    )
    found = problems(doc)
    assert found[0].startswith(
        "parameters.optimizer: has `parameters`, so it is a block of nested parameters and "
        "cannot also have `values`"
    )
    assert found[1].startswith("parameters.optimizer.parameters.lr.min: 0.1 is not less than max")
    assert found[2].startswith("parameters.optimizer.parameters.inner.parameters: is empty")


def test_conflicting_dotted_and_nested_names() -> None:
    doc = base(**{"a.b": {"value": 1}, "a": {"parameters": {"b": {"value": 2}}}})
    (problem,) = problems(doc)
    assert problem.startswith("parameters: duplicate parameter 'a.b'")


def test_falsy_values_are_valid_and_round_trip() -> None:
    config = load_sweep_config(base(x={"values": [0, False, "", None]}, y={"value": 0}))
    space = config.parameters
    cells = list(space.grid())
    assert cells == [{"x": v, "y": 0} for v in (0, False, "", None)]
    assert [type(c["x"]) for c in cells] == [int, bool, str, type(None)]
    assert [space.decode(space.encode(c)) for c in cells] == cells


def test_values_must_be_json() -> None:
    found = problems(base(x={"values": [1, float("nan"), {1: "a"}]}, d={"value": {1, 2}}))
    assert "parameters.x.values[1]: nan is not a finite number" in found[0]
    assert found[1].startswith("parameters.x.values[2]: mapping key 1 is not a string")
    assert found[2].startswith("parameters.d.value: {1, 2} is a set, not a JSON value")


def test_probability_problems() -> None:
    found = problems(base(x={"values": [1, 2, 3], "probabilities": [0.5, 0.5]}))
    assert found == [
        "parameters.x.probabilities: has 2 entries for 3 values. Fix: give exactly one "
        "probability per value, in the same order"
    ]
    (problem,) = problems(base(x={"values": [1, 2], "probabilities": [-0.5, 1.5]}))
    assert problem.startswith("parameters.x.probabilities: must be numbers >= 0, got -0.5")


def test_w_and_b_filled_configs_are_accepted() -> None:
    """What W&B's sweeps library writes back after filling defaults still loads."""
    doc = base(
        act={
            "distribution": "categorical_w_probabilities",
            "values": ["a", "b"],
            "probabilities": [0.3, 0.7],
        },
        lr={"distribution": "q_uniform", "min": 0, "max": 1, "q": 1.0},
        n={"distribution": "normal", "mu": 0.0, "sigma": 1.0},
    )
    with pytest.warns(SweepConfigWarning, match="controller: is ignored"):
        config = load_sweep_config({**doc, "controller": {"type": "cloud"}})
    assert config.parameters["act"].distribution == "categorical"
    assert config.parameters["act"].probabilities == (0.3, 0.7)
    assert config.warnings == [
        "controller: is ignored: runyard has no separate controller process; its agents "
        "choose the runs"
    ]


def test_w_and_b_features_runyard_lacks_are_errors() -> None:
    found = problems({**base(x={"value": 1}), "job": "j", "method": "custom"})
    assert found[0].startswith("job: `job` runs a W&B Launch job")
    assert found[1].startswith("method: `custom` (W&B's custom schedulers) is not supported")
    found = problems({**base(x={"value": 1}), "imports": ["numpy"]})
    assert found[0].startswith("imports: unknown key. Fix: remove it; the keys are program")


def test_missing_and_mistyped_top_level_keys() -> None:
    found = problems({"program": 3, "metric": "loss", "metod": "random"})
    assert 'program: must be a string, got 3. Fix: quote it: program: "3"' in found
    assert "metod: unknown key. Fix: did you mean `method`?" in found
    assert "method: is missing. Fix: add method: grid, random or bayes" in found
    assert (
        'metric: must be a mapping, got "loss". Fix: write metric: {name: loss, goal: minimize} '
        "(or maximize)" in found
    )
    assert any(p.startswith("parameters: is missing") for p in found)
    (problem,) = problems({**base(x={"value": 1}), "method": "bayesian", "metric": {"name": "m"}})
    assert (
        problem
        == 'method: must be grid, random or bayes, got "bayesian". Fix: did you mean `bayes`?'
    )


def test_metric_keys() -> None:
    found = problems({**base(x={"value": 1}), "metric": {"nme": "loss", "target": "high"}})
    assert found == [
        "metric.nme: unknown key. Fix: did you mean `name`?",
        "metric.name: is missing. Fix: name the metric your program logs, e.g. name: val_loss",
        'metric.target: must be a number, got "high". Fix: e.g. target: 0.95, or remove it',
    ]
    config = load_sweep_config({**base(x={"value": 1}), "metric": {"name": "l", "impute": "best"}})
    assert config.metric is not None and config.metric.impute == "best"


def test_yaml_syntax_error_has_line_info(tmp_path: Path) -> None:
    path = write(tmp_path, "method: random\nparameters:\n  lr: {min: 0.1, max: 1\nprogram: x\n")
    (problem,) = problems(path)
    assert problem.startswith(f"{path}: YAML syntax error at line ")
    assert "line 4" in problem or "line 3" in problem


def test_json_syntax_error_has_line_info(tmp_path: Path) -> None:
    path = write(tmp_path, '{"method": "random",\n "parameters": }', name="sweep.json")
    (problem,) = problems(path)
    assert problem.startswith(f"{path}: JSON syntax error at line 2, column 16")


def test_duplicate_yaml_keys_are_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "program: t.py\nmethod: random\nparameters:\n  lr: {value: 1}\n  lr: {value: 2}\n",
    )
    assert problems(path) == [
        "line 5: duplicate key `lr` (first at line 4); YAML keeps only the last one. "
        "Fix: remove or rename one"
    ]


@pytest.mark.parametrize("text", ["", "# only a comment\n", "{}\n"])
def test_empty_documents(tmp_path: Path, text: str) -> None:
    (problem,) = problems(write(tmp_path, text))
    assert problem.startswith(f"{tmp_path / 'sweep.yaml'} is empty. Fix: give at least `method`")


def test_non_mapping_document(tmp_path: Path) -> None:
    (problem,) = problems(write(tmp_path, "- method: random\n"))
    assert "must be a mapping of keys (method, parameters, ...), got a list" in problem


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_sweep_config(tmp_path / "nope.yaml")


def test_quantized_range_outside_bounds_warns() -> None:
    with pytest.warns(SweepConfigWarning, match=r"from 0\.0 to 1\.0, which reaches outside"):
        config = load_sweep_config(
            base(x={"distribution": "q_uniform", "min": 0.2, "max": 1.0, "q": 0.5})
        )
    assert config.parameters["x"].grid_values() == [0.0, 0.5, 1.0]
    assert config.warnings[0].startswith("parameters.x: values are multiples of q (0.5)")
    with pytest.warns(SweepConfigWarning, match="from 0 to"):
        load_sweep_config(
            base(x={"distribution": "q_log_uniform_values", "min": 1, "max": 100, "q": 4})
        )


def test_duplicate_values_warn() -> None:
    with pytest.warns(
        SweepConfigWarning, match=r"parameters\.x\.values\[2\]: 1\.0 repeats values\[0\]"
    ):
        load_sweep_config(base(x={"values": [1, True, 1.0]}))


def test_raw_is_a_copy() -> None:
    doc = base(x={"values": [[1, 2]]})
    config = load_sweep_config(doc)
    doc["parameters"]["x"]["values"][0].append(3)
    assert config.raw["parameters"]["x"]["values"] == [[1, 2]]
