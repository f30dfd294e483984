"""Hydra overrides for sweep trials (``runyard.sweeps.hydra_args``), checked against Hydra itself."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("hydra")

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from runyard.sweeps import hydra_args
from runyard.sweeps.command import build_command
from runyard.sweeps.hydra_args import (
    HydraAppInfo,
    HydraOverrides,
    HydraProbeError,
    format_overrides,
    format_value,
    probe_hydra_app,
)

# --------------------------------------------------------------------------------------------
# format_value against Hydra's override parser
# --------------------------------------------------------------------------------------------

STRINGS = [
    "",
    " ",
    "a b",
    "  leading and trailing  ",
    'double "quotes"',
    "single 'quotes'",
    "\"'mixed'\"",
    "a,b",
    "k=v",
    "a:b",
    "[1,2]",
    "{a:1}",
    "f(x)",
    "${x}",
    "${oc.env:HOME}",
    "a${b}c${d}",
    "${",
    "$${x}",
    "\\${x}",
    "\\\\${x}",
    "$",
    "}",
    "back\\slash",
    "trailing\\",
    "trailing\\\\",
    '\\"',
    "\\",
    "\\n is not a newline",
    "line\nbreak",
    "tab\there",
    "ünïcödé 日本語 🎉",
    "null",
    "NULL",
    "true",
    "False",
    "1e-3",
    "1",
    "-5",
    "0x10",
    "inf",
    "nan",
    "#comment",
    "~tilde",
    "+plus",
    "a=b,c=d",
]
OTHERS: list[Any] = [
    None,
    True,
    False,
    0,
    -0,
    1,
    -7,
    10**30,
    0.0,
    -0.0,
    0.1,
    0.1 + 0.2,
    1 / 3,
    1e-5,
    1e300,
    5e-324,
    -2.5e-10,
    float("inf"),
    float("-inf"),
    [],
    {},
    [0, False, "", None, 0.0],
    [1, [2, [3, ["a b", "c,d"]]]],
    {"a": {"b": [1, "c,d"]}, "k-e_y": "${z}", "sp ace": 1, "a.b": 2, "c:d": 3, "x=y": "="},
    {"1a": None, "path/like": [], "$d": "v"},
]

PARSER = OverridesParser.create()


def parsed(value: Any) -> Any:
    """What Hydra's parser makes of ``++v=<format_value(value)>``."""
    return PARSER.parse_override("++v=" + format_value(value)).value()


def received(value: Any) -> Any:
    """What the app sees: the parsed value put in a config as Hydra does, then resolved."""
    cfg = OmegaConf.create({})
    OmegaConf.update(cfg, "v", parsed(value), merge=True, force_add=True)
    return OmegaConf.to_container(cfg, resolve=True)["v"]


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and repr(a) == repr(b)


@pytest.mark.parametrize("value", STRINGS + OTHERS)
def test_format_value_round_trips(value: Any) -> None:
    assert same(received(value), value), format_value(value)
    if "${" not in repr(value):  # ${ stays escaped (\${) until OmegaConf reads the value
        assert same(parsed(value), value)


def test_nan_round_trips() -> None:
    assert format_value(float("nan")) == "nan"
    assert math.isnan(received(float("nan")))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (0.0, "0.0"),
        ("", '""'),
        (1e-5, "1e-05"),
        (float("-inf"), "-inf"),
        ("a b", '"a b"'),
        ('q"', '"q\\""'),
        ("${x}", '"\\${x}"'),
        ([1, "a"], '[1,"a"]'),
        ({"a": 1, "b c": [None]}, "{a:1,b\\ c:[null]}"),
        ((1, 2), "[1,2]"),
        (np.float64(0.1), "0.1"),
        (np.int64(-3), "-3"),
        (np.bool_(True), "true"),
    ],
)
def test_format_value_text(value: Any, text: str) -> None:
    assert format_value(value) == text


@pytest.mark.parametrize(
    "value", ["???", ["???"], {"1": 1}, {"true": 1}, {"é": 1}, {1: 2}, object()]
)
def test_format_value_rejects_what_hydra_cannot_receive(value: Any) -> None:
    with pytest.raises(ValueError):
        format_value(value)


# --------------------------------------------------------------------------------------------
# format_overrides
# --------------------------------------------------------------------------------------------

INFO = HydraAppInfo(
    choices={"db": "mysql", "hydra/launcher": "basic"},
    groups={"db", "db/engine", "experiment", "hydra/launcher"},
    config={"lr": 0.1, "model": {"depth": 3}, "tags": ["a"], "db": {"port": 3306}},
    group_options={"db": ["mysql", "postgres"], "experiment": ["fast"]},
)


def test_without_info_everything_is_force_added() -> None:
    params = {"lr": 0.5, "model.depth": 0, "name": "", "db": "postgres", "none": None}
    overrides, warnings = format_overrides(params, None)
    assert overrides == [
        "++lr=0.5",
        "++model.depth=0",
        '++name=""',
        '++db="postgres"',
        "++none=null",
    ]
    assert warnings == []


def test_override_forms() -> None:
    params = {
        "lr": 0.5,
        "model.depth": 1,
        "tags.0": "b",
        "db.port": 0,
        "db": "postgres",
        "experiment": "fast",
        "db/engine": "slow",
        "hydra/launcher": "basic",
        "new.key": False,
    }
    overrides, warnings = format_overrides(params, INFO)
    assert overrides == [
        "++lr=0.5",
        "++model.depth=1",
        '++tags.0="b"',
        "++db.port=0",
        "db=postgres",  # option names bare: override_dirname folders get no quotes
        "+experiment=fast",
        "+db/engine=slow",
        "hydra/launcher=basic",
        "++new.key=false",
    ]
    assert len(warnings) == 1 and warnings[0].startswith("new.key: not in the app's composed")


def test_group_with_keys_inside_packages_and_multi_select() -> None:
    """Hydra's tutorial sweep (a group and a key inside its option), a group with a package
    (``db@backup``) and a multi-select group (``server/site=[...]``) in ``${args_hydra}``."""
    info = HydraAppInfo(
        choices={"db": "mysql", "db@source": "mysql"},
        groups={"db", "server", "server/site"},
        config={"db": {"timeout": 5}, "source": {"driver": "mysql"}},
        group_options={"db": ["mysql", "postgresql", "true"], "server/site": ["fb", "amazon"]},
    )
    params = {
        "db": "postgresql",
        "db.timeout": 10,
        "db@source": "postgresql",
        "db@backup": "mysql",
        "server/site": ["fb", "amazon"],
    }
    overrides, warnings = format_overrides(params, info)
    assert overrides == [
        "db=postgresql",
        "++db.timeout=10",
        "db@source=postgresql",
        "+db@backup=mysql",
        "+server/site=[fb,amazon]",
    ]
    assert warnings == []
    # an option Hydra would read as something else than its name keeps its quotes
    assert format_overrides({"db": "true"}, info)[0] == ['db="true"']
    _, warnings = format_overrides({"server/site": ["fb", "yahoo"]}, info)
    assert "not an option of the config group 'server/site'" in warnings[0]


def test_group_null_and_bad_values() -> None:
    overrides, warnings = format_overrides({"db": None, "experiment": None}, INFO)
    assert overrides == ["~db"]
    assert len(warnings) == 1 and "experiment" in warnings[0]
    with pytest.raises(ValueError, match="option names"):
        format_overrides({"db": 1.5}, INFO)
    assert format_overrides({"db": 3}, INFO)[0] == ['db="3"']


def test_warnings_for_unknown_option_and_group_spelled_with_dots() -> None:
    _, warnings = format_overrides({"db": "oracle", "db.engine": "slow"}, INFO)
    assert "oracle" in warnings[0] and "mysql, postgres" in warnings[0]
    assert "'db/engine'" in warnings[1]


@pytest.mark.parametrize("name", ["bad key", "a..b", "é", "a=b", ".a", "nogroup@pkg", "0.a", "x/y"])
def test_bad_override_keys(name: str) -> None:
    with pytest.raises(ValueError, match="cannot be a Hydra override key"):
        format_overrides({name: 1}, INFO)


def test_group_without_info_is_an_error() -> None:
    with pytest.raises(ValueError, match="needs the app probed"):
        format_overrides({"db/engine": "slow"}, None)


def test_group_with_package_from_choices() -> None:
    info = HydraAppInfo(choices={"db@backup": "mysql"}, groups={"db"}, config={})
    assert format_overrides({"db@backup": "postgres"}, info)[0] == ["db@backup=postgres"]


# --------------------------------------------------------------------------------------------
# A real Hydra app
# --------------------------------------------------------------------------------------------

APP = """
import json
import sys
from pathlib import Path

import hydra
from omegaconf import OmegaConf

print("module-level output that the probe must ignore: @@runyard-probe:fake:groups@@")


@hydra.main(version_base=None, config_path="configs", config_name="defaults")
def main(cfg):
    Path("task-ran").write_text("yes")
    print("RESULT=" + json.dumps(OmegaConf.to_container(cfg, resolve=True)))


if __name__ == "__main__":
    main()
"""

CONFIGS = {
    "defaults.yaml": """
        defaults:
          - db: mysql
          - _self_
        lr: 0.1
        name: base
        flag: true
        model:
          depth: 3
          act: relu
          widths: [8, 16]
        ref: ${model.depth}
        """,
    "mandatory.yaml": """
        defaults:
          - db: ???
          - _self_
        lr: 0.1
        """,
    "db/mysql.yaml": "driver: mysql\nport: 3306\n",
    "db/postgres.yaml": """
        defaults:
          - engine: fast
        driver: postgres
        port: 5432
        """,
    "db/engine/fast.yaml": "kind: fast\n",
    "db/engine/slow.yaml": "kind: slow\n",
    "experiment/fast.yaml": """
        # @package _global_
        lr: 0.5
        model:
          depth: 1
        """,
}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hydra-app")
    (root / "app.py").write_text(APP)
    for name, text in CONFIGS.items():
        path = root / "configs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


def run_app(argv: list[str], cwd: Path) -> dict[str, Any]:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT="))
    result: dict[str, Any] = json.loads(line[len("RESULT=") :])
    return result


def test_probe(app: Path) -> None:
    info = probe_hydra_app([sys.executable, "app.py"], app)
    assert info.choices["db"] == "mysql"
    assert "experiment" not in info.choices
    assert {"db", "db/engine", "experiment", "hydra/launcher"} <= info.groups
    assert info.group_options["db"] == ["mysql", "postgres"]
    assert info.config == {
        "db": {"driver": "mysql", "port": 3306},
        "lr": 0.1,
        "name": "base",
        "flag": True,
        "model": {"depth": 3, "act": "relu", "widths": [8, 16]},
        "ref": "${model.depth}",
    }
    assert not (app / "task-ran").exists()  # the task function did not run
    assert not (app / "outputs").exists()


def test_probe_errors(app: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain.py"
    plain.write_text("import sys\nprint('not hydra', sys.argv[1:])\n")
    with pytest.raises(HydraProbeError, match="does not look like a Hydra app"):
        probe_hydra_app([sys.executable, str(plain)], tmp_path)
    with pytest.raises(HydraProbeError, match="Could not find 'db/oracle'"):
        probe_hydra_app([sys.executable, "app.py"], app, overrides=["db=oracle"])
    with pytest.raises(HydraProbeError, match="could not start"):
        probe_hydra_app([str(tmp_path / "missing-program")], tmp_path)
    slow = tmp_path / "slow.py"
    slow.write_text("import time\ntime.sleep(30)\n")
    with pytest.raises(HydraProbeError, match="timed out"):
        probe_hydra_app([sys.executable, str(slow)], tmp_path, timeout=0.5)


TRICKY = {
    "name": "a \"quoted\" 'name' with spaces, commas=and ${not.interp} \\ back\\",
    "lr": 1e-07,
    "flag": False,
    "model.depth": 0,
    "model.act": "",
    "model.widths": [1, None, "x,y"],
    "model.extra": {"k": "v w", "n": None},
    "new.key": "null",
    "db": "postgres",
    "db.port": 0,
    "experiment": "fast",
    "unicode": "日本 🎉",
}


def test_trial_overrides_arrive_exactly(app: Path) -> None:
    warnings: list[str] = []
    hydra = HydraOverrides(cwd=app, on_warning=warnings.append)
    argv = build_command(
        ["${interpreter}", "${program}", "${args_hydra}", "hydra.run.dir=out/${now:%H%M%S}"],
        program="app.py",
        params=TRICKY,
        env={},
        interpreter=sys.executable,
        json_file_dir=app / "json",
        hydra=hydra,
    )
    assert "db=postgres" in argv and "+experiment=fast" in argv
    assert "++lr=1e-07" in argv and '++new.key="null"' in argv
    cfg = run_app(argv, app)
    assert cfg["name"] == TRICKY["name"]
    assert cfg["lr"] == 1e-07 and cfg["flag"] is False
    assert cfg["model"] == {
        "depth": 0,
        "act": "",
        "widths": [1, None, "x,y"],
        "extra": {"k": "v w", "n": None},
    }
    assert cfg["new"] == {"key": "null"}
    assert cfg["db"] == {"engine": {"kind": "fast"}, "driver": "postgres", "port": 0}
    assert cfg["unicode"] == "日本 🎉"
    assert cfg["ref"] == 0  # interpolation from the app's config, resolved after the override
    # keys absent from the composed config: a warning each, nothing else.
    assert sorted(w.split(":")[0] for w in warnings) == ["model.extra", "new.key", "unicode"]


def test_nested_group_added_by_another_option(app: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, ...]] = []
    real = hydra_args.probe_hydra_app

    def counting(*args: Any, **kwargs: Any) -> HydraAppInfo:
        calls.append(tuple(kwargs.get("overrides", ())))
        return real(*args, **kwargs)

    monkeypatch.setattr(hydra_args, "probe_hydra_app", counting)
    hydra = HydraOverrides(cwd=app, program="app.py", interpreter=sys.executable)
    # db/engine is not in the defaults list unless db=postgres puts it there.
    assert hydra.overrides({"db": "postgres", "db/engine": "slow"}) == [
        "db=postgres",
        "db/engine=slow",
    ]
    assert hydra.overrides({"db": "mysql", "db/engine": "slow"}) == [
        "db=mysql",
        "+db/engine=slow",
    ]
    n = len(calls)
    hydra.overrides({"db": "postgres", "db/engine": "slow", "lr": 0.3})
    hydra.overrides({"lr": 0.2})
    assert len(calls) == n  # cached: the base probe and one per combination of options
    cfg = run_app([sys.executable, "app.py", 'db="postgres"', 'db/engine="slow"'], app)
    assert cfg["db"]["engine"] == {"kind": "slow"}


def test_mandatory_group(app: Path) -> None:
    argv = [sys.executable, "app.py", "--config-name=mandatory"]
    with pytest.raises(HydraProbeError, match="You must specify 'db'"):
        probe_hydra_app(argv, app)
    hydra = HydraOverrides(cwd=app)
    assert hydra.overrides({"lr": 1, "db": "postgres"}, argv=argv) == ["++lr=1", "db=postgres"]


def test_probe_failure_is_reported(app: Path) -> None:
    hydra = HydraOverrides(cwd=app, program="app.py", interpreter=sys.executable)
    with pytest.raises(HydraProbeError, match="oracle"):
        hydra.overrides({"db": "oracle"})
