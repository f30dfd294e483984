"""Sweep command macros (``runyard.sweeps.command``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runyard.sweeps import command as command_module
from runyard.sweeps.command import (
    DEFAULT_COMMAND,
    MACROS,
    CommandError,
    build_command,
    format_arg_value,
    unknown_macros,
)
from runyard.sweeps.hydra_args import HydraAppInfo, HydraOverrides

FALSY = {"zero": 0, "no": False, "empty": "", "none": None, "fzero": 0.0}


def build(
    command: list[str] | None, params: dict[str, Any], tmp_path: Path, **kw: Any
) -> list[str]:
    kw.setdefault("program", "train.py")
    kw.setdefault("env", {})
    kw.setdefault("interpreter", "/opt/py/bin/python")
    return build_command(command, params=params, json_file_dir=tmp_path / "json", **kw)


def test_macro_list() -> None:
    assert set(MACROS) == {
        "env",
        "interpreter",
        "program",
        "args",
        "args_no_hyphens",
        "args_no_boolean_flags",
        "args_json",
        "args_json_file",
        "args_hydra",
        "envvar:NAME",
    }
    assert DEFAULT_COMMAND == ["${env}", "${interpreter}", "${program}", "${args}"]


def test_default_command(tmp_path: Path) -> None:
    argv = build(None, {"lr": 0.01, "optimizer.name": "adam"}, tmp_path)
    assert argv == [
        "/usr/bin/env",
        "/opt/py/bin/python",
        "train.py",
        "--lr=0.01",
        "--optimizer.name=adam",
    ]
    assert build([], {}, tmp_path) == ["/usr/bin/env", "/opt/py/bin/python", "train.py"]


def test_interpreter_defaults_to_sys_executable(tmp_path: Path) -> None:
    argv = build_command(
        ["${interpreter}"], program=None, params={}, env={}, json_file_dir=tmp_path
    )
    assert argv == [sys.executable]


def test_env_is_omitted_on_windows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(command_module, "_on_windows", lambda: True)
    assert build(None, {"a": 1}, tmp_path) == ["/opt/py/bin/python", "train.py", "--a=1"]


def test_args_falsy_values(tmp_path: Path) -> None:
    assert build(["${args}"], FALSY, tmp_path) == [
        "--zero=0",
        "--no=False",
        "--empty=",
        "--none=None",
        "--fzero=0.0",
    ]


def test_args_no_hyphens(tmp_path: Path) -> None:
    assert build(["${args_no_hyphens}"], {"a.b": 1, **FALSY}, tmp_path) == [
        "a.b=1",
        "zero=0",
        "no=False",
        "empty=",
        "none=None",
        "fzero=0.0",
    ]


def test_args_no_boolean_flags(tmp_path: Path) -> None:
    params = {"yes": True, "no": False, "zero": 0, "empty": "", "none": None, "s": "True"}
    assert build(["${args_no_boolean_flags}"], params, tmp_path) == [
        "--yes",
        "--zero=0",
        "--empty=",
        "--none=None",
        "--s=True",
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("a b", "a b"),
        ('say "hi"', 'say "hi"'),
        ("1e-3", "1e-3"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e-5, "1e-05"),
        (1e300, "1e+300"),
        (float("inf"), "inf"),
        (float("nan"), "nan"),
        (-3, "-3"),
        (10**30, str(10**30)),
        (True, "True"),
        ([1, "a", None, False], '[1,"a",null,false]'),
        ({"k": [1.5, "x y"]}, '{"k":[1.5,"x y"]}'),
        ((1, 2), "[1,2]"),
        (np.float64(0.1), "0.1"),
        (np.float32(0.5), "0.5"),
        (np.int64(7), "7"),
        (np.bool_(False), "False"),
        ("ünï ${x}", "ünï ${x}"),
    ],
)
def test_format_arg_value(value: Any, text: str) -> None:
    assert format_arg_value(value) == text


def test_floats_round_trip(tmp_path: Path) -> None:
    values = [0.1, 1 / 3, 2.0**-1074, 1.7976931348623157e308, -0.0, 123456789.123456789]
    argv = build(["${args}"], {f"x{i}": v for i, v in enumerate(values)}, tmp_path)
    assert [float(a.split("=", 1)[1]) for a in argv] == values


def test_args_json(tmp_path: Path) -> None:
    params = {"a.b": 1, **FALSY, "l": [1, {"x": None}], "f": 0.1 + 0.2, "n": np.int64(3)}
    argv = build(["run", "${args_json}"], params, tmp_path)
    assert argv[0] == "run" and len(argv) == 2
    assert json.loads(argv[1]) == {**params, "n": 3}


def test_args_json_file(tmp_path: Path) -> None:
    params = {"lr": 0.001, **FALSY, "name": 'a "b" ${c}'}
    argv = build(["${program}", "${args_json_file}", "--cfg=${args_json_file}"], params, tmp_path)
    path = Path(argv[1])
    assert path.is_absolute() and path.parent == (tmp_path / "json").resolve()
    assert argv[2] == f"--cfg={path}"  # the same file twice
    assert json.loads(path.read_text(encoding="utf-8")) == params
    assert len(list((tmp_path / "json").iterdir())) == 1


def test_json_file_written_only_when_used(tmp_path: Path) -> None:
    build(None, {"a": 1}, tmp_path)
    assert not (tmp_path / "json").exists()


def test_envvar(tmp_path: Path) -> None:
    env = {"DATA": "/data/set 1", "EMPTY": ""}
    argv = build(
        ["${envvar:DATA}", "--data=${envvar:DATA}/x", "${envvar:EMPTY}"], {}, tmp_path, env=env
    )
    assert argv == ["/data/set 1", "--data=/data/set 1/x", ""]


def test_envvar_missing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="NOT_SET_ANYWHERE"):
        build(["${envvar:NOT_SET_ANYWHERE}"], {}, tmp_path, env={"OTHER": "1"})


def test_scalar_macros_inside_an_argument(tmp_path: Path) -> None:
    argv = build(
        ["${interpreter}", "-u", "${program}", "--params=${args_json}", "prefix-${program}"],
        {"a": 0},
        tmp_path,
    )
    assert argv == [
        "/opt/py/bin/python",
        "-u",
        "train.py",
        '--params={"a": 0}',
        "prefix-train.py",
    ]


def test_list_macro_inside_an_argument_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="whole item"):
        build(["--all=${args}"], {"a": 1}, tmp_path)


def test_empty_list_expansion_removes_the_item(tmp_path: Path) -> None:
    cmd = ["x", "${args}", "${args_no_hyphens}", "${args_no_boolean_flags}", "${args_hydra}", "y"]
    assert build(cmd, {}, tmp_path) == ["x", "y"]
    assert build(["x", "${args_no_boolean_flags}"], {"flag": False}, tmp_path) == ["x"]


def test_program_missing(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no program"):
        build(None, {}, tmp_path, program=None)


def test_unknown_macros() -> None:
    cmd = [
        "${env}",
        "${argz}",
        "--x=${args_jsn_file}",
        "${envvar:HOME}",
        "${envvar:}",
        "hydra.run.dir=out/${now:%Y-%m-%d}",
        "${oc.env:HOME}",
        "$${escaped}",
        "${argz}",
    ]
    assert unknown_macros(cmd) == ["argz", "args_jsn_file", "envvar:"]
    assert unknown_macros(DEFAULT_COMMAND) == []


def test_unknown_macro_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"\$\{argz\}"):
        build(["${interpreter}", "${argz}"], {}, tmp_path)


def test_interpolations_and_escapes_pass_through(tmp_path: Path) -> None:
    argv = build(
        ["hydra.run.dir=out/${now:%Y-%m-%d}", "$${args}", "home=${oc.env:HOME}", "$$"],
        {"a": 1},
        tmp_path,
    )
    assert argv == ["hydra.run.dir=out/${now:%Y-%m-%d}", "${args}", "home=${oc.env:HOME}", "$$"]


def test_non_string_items_are_text(tmp_path: Path) -> None:
    assert build(["--epochs", 10], {}, tmp_path) == ["--epochs", "10"]  # type: ignore[list-item]


def test_args_hydra_without_probe(tmp_path: Path) -> None:
    params = {"lr": 0.1, "name": "a b", "flag": False, "none": None}
    argv = build(["${program}", "${args_hydra}"], params, tmp_path)
    assert argv == ["train.py", "++lr=0.1", '++name="a b"', "++flag=false", "++none=null"]


def test_args_hydra_with_known_app(tmp_path: Path) -> None:
    info = HydraAppInfo(
        choices={"db": "mysql"},
        groups={"db", "experiment"},
        config={"lr": 0.1, "db": {"port": 1}},
    )
    seen: list[str] = []
    hydra = HydraOverrides(info=info, on_warning=seen.append)
    params = {"db": "postgres", "experiment": "fast", "lr": 0.5, "typo": 1}
    argv = build(["${program}", "${args_hydra}"], params, tmp_path, hydra=hydra)
    assert argv == ["train.py", "db=postgres", "+experiment=fast", "++lr=0.5", "++typo=1"]
    assert len(seen) == 1 and "typo" in seen[0]
    build(["${program}", "${args_hydra}"], params, tmp_path, hydra=hydra)
    assert len(seen) == 1  # each warning once per agent


def test_static_argv_is_what_the_probe_runs(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    class Recorder(HydraOverrides):
        def overrides(self, params: Any, *, argv: Any = (), env: Any = None) -> list[str]:
            calls.append(list(argv))
            return ["++x=1"]

    cmd = [
        "${env}",
        "${interpreter}",
        "${program}",
        "${args_hydra}",
        "--cfg=${args_json_file}",
        "${args}",
        "hydra.run.dir=${envvar:OUT}",
    ]
    argv = build(cmd, {"x": 1}, tmp_path, env={"OUT": "o"}, hydra=Recorder(probe=False))
    assert calls == [["/usr/bin/env", "/opt/py/bin/python", "train.py", "hydra.run.dir=o"]]
    assert argv[3] == "++x=1" and argv[-1] == "hydra.run.dir=o"


def test_values_arrive_exactly_in_a_real_program(tmp_path: Path) -> None:
    script = tmp_path / "show.py"
    script.write_text("import json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    params = {"s": "a \"b\" c\\d ${e} 'f'", "u": "日本", "e": "", "z": 0, "f": 1e-7}
    argv = build(None, params, tmp_path, program=str(script), interpreter=sys.executable)
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [
        "--s=a \"b\" c\\d ${e} 'f'",
        "--u=日本",
        "--e=",
        "--z=0",
        "--f=1e-07",
    ]
