"""config: every accepted input type, nested access, change protection, storage."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest
from omegaconf import OmegaConf

import runyard
from tests.conftest import api


def test_dictconfig_is_stored_resolved_and_nested(root: Path) -> None:
    cfg = OmegaConf.create(
        {"lr": 0.1, "model": {"width": 64, "configs": {"depth": 3}}, "run": {"lr2": "${lr}"}}
    )
    run = runyard.init(project="p", config=cfg)
    assert run.config.run.lr2 == 0.1
    assert run.config["model"]["configs"]["depth"] == 3
    assert dict(**runyard.config.model.configs) == {"depth": 3}
    run.finish()
    stored = api(root).run(run.path).config
    assert stored == {
        "lr": 0.1,
        "model": {"width": 64, "configs": {"depth": 3}},
        "run": {"lr2": 0.1},
    }


def test_missing_value_error_names_every_missing_key() -> None:
    cfg = OmegaConf.create({"a": "???", "b": {"c": "???", "d": 1}, "l": [1, "???"]})
    with pytest.raises(runyard.ConfigError, match=r"a, b\.c, l\[1\].*`a=\.\.\.`"):
        runyard.init(project="p", config=cfg)
    assert runyard.run is None  # nothing half-started


def test_listconfig_and_structured_inputs() -> None:
    @dataclasses.dataclass
    class Opt:
        name: str = "adam"
        betas: tuple[float, float] = (0.9, 0.99)

    ns = argparse.Namespace(epochs=3, layers=[1, 2])
    run = runyard.init(project="p", config={"opt": Opt(), "args": ns})
    run.config.update({"list": OmegaConf.create([1, {"x": 2}])})
    assert run.config.as_dict() == {
        "opt": {"name": "adam", "betas": [0.9, 0.99]},
        "args": {"epochs": 3, "layers": [1, 2]},
        "list": [1, {"x": 2}],
    }


def test_update_refuses_silent_changes() -> None:
    run = runyard.init(project="p", config={"lr": 0.1, "model": {"depth": 3}})
    run.config.update({"batch": 32, "lr": 0.1})  # same value: fine
    with pytest.raises(runyard.ConfigError, match=r"model\.depth: 3 -> 4.*allow_val_change"):
        run.config.update({"model": {"depth": 4}})
    assert run.config.model.depth == 3
    run.config.update({"model": {"depth": 4}}, allow_val_change=True)
    assert run.config.model.depth == 4
    run.config.momentum = 0.9
    run.config["model"]["width"] = 8
    assert run.config.as_dict() == {
        "lr": 0.1,
        "model": {"depth": 4, "width": 8},
        "batch": 32,
        "momentum": 0.9,
    }
    with pytest.raises(AttributeError, match=r"model\.nope"):
        _ = run.config.model.nope


def test_config_assigned_before_init_becomes_the_runs_config(root: Path) -> None:
    cfg = OmegaConf.create({"model": {"configs": {"units": 4}}, "wandb": {"project": "seed"}})
    runyard.config = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    run = runyard.init(project="seed")
    assert runyard.config.model.configs == {"units": 4}
    assert isinstance(runyard.config, runyard.Config)
    runyard.config.update({"extra": 1})
    run.finish()
    assert api(root).run(run.path).config == {
        "model": {"configs": {"units": 4}},
        "wandb": {"project": "seed"},
        "extra": 1,
    }


def test_config_changes_after_init_are_stored(root: Path) -> None:
    run = runyard.init(project="p", config={"a": 1})
    run.config.update({"b": {"c": 2}})
    run.finish()
    assert api(root).run(run.path).config == {"a": 1, "b": {"c": 2}}


def test_unstorable_config_value_is_named() -> None:
    with pytest.raises(runyard.ConfigError, match=r"'opt\.fn'"):
        runyard.init(project="p", config={"opt": {"fn": object()}})


def test_include_and_exclude_keys() -> None:
    run = runyard.init(project="p", config={"a": 1, "b": 2, "c": 3}, config_exclude_keys=["b"])
    assert run.config.as_dict() == {"a": 1, "c": 3}
    run.finish()
    run = runyard.init(project="p", config={"a": 1, "b": 2}, config_include_keys=["b"])
    assert run.config.as_dict() == {"b": 2}
