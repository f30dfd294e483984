"""Early termination: W&B-compatible ``hyperband`` and ``asha`` (runyard.sweeps.stopping)."""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from runyard.sweeps.stopping import (
    MAX_BAND,
    AshaStopping,
    EarlyStopping,
    EarlyStoppingConfigError,
    HyperbandStopping,
    RunProgress,
    build_early_stopping,
)


def rule(spec: dict[str, Any], goal: str = "minimize", metric: str = "loss") -> EarlyStopping:
    built = build_early_stopping(spec, metric, goal)  # type: ignore[arg-type]
    assert built is not None
    return built


def run(run_id: str, values: Sequence[float], state: str = "running") -> RunProgress:
    return RunProgress(run_id, state, tuple(values))


def stopped(r: EarlyStopping, runs: Sequence[RunProgress]) -> list[str]:
    return [d.run_id for d in r.decide(runs)]


def flip(runs: Sequence[RunProgress]) -> list[RunProgress]:
    """The same runs for a metric to maximize (every value negated)."""
    return [RunProgress(r.run_id, r.state, tuple(-v for v in r.values)) for r in runs]


# --------------------------------------------------------------------------------------------
# bands


@pytest.mark.parametrize(
    ("spec", "first_bands"),
    [
        ({"min_iter": 3}, (3, 9, 27, 81, 243)),
        ({"min_iter": 1, "eta": 2}, (1, 2, 4, 8, 16)),
        ({"min_iter": 2, "eta": 4}, (2, 8, 32, 128)),
        ({"min_iter": 2, "eta": 2.5}, (2, 5, 12, 31, 78)),  # floor(2 * 2.5**k)
        ({"min_iter": 3.0}, (3, 9, 27)),  # an integral float is an integer (as in JSON Schema)
    ],
)
def test_min_iter_bands(spec: dict[str, Any], first_bands: tuple[int, ...]) -> None:
    r = rule({"type": "hyperband", **spec})
    assert r.bands[: len(first_bands)] == first_bands
    assert r.bands[-1] <= MAX_BAND < r.bands[-1] * r.eta  # open-ended, listed up to MAX_BAND
    assert list(r.bands) == sorted(set(r.bands))


@pytest.mark.parametrize(
    ("spec", "bands"),
    [
        ({"max_iter": 81, "s": 3}, (3, 9, 27)),  # max_iter / eta**i, i = 1..s; not max_iter
        ({"max_iter": 27, "s": 2}, (3, 9)),
        ({"max_iter": 18, "s": 2}, (2, 6)),
        ({"max_iter": 10, "s": 2}, (1, 3)),  # floor(3.33), floor(1.11)
        ({"max_iter": 27, "s": 9}, (1, 3, 9)),  # stops before a band < 1
        ({"max_iter": 5, "s": 2, "eta": 2}, (1, 2)),
        ({"max_iter": 100, "s": 3, "eta": 4}, (1, 6, 25)),
        ({"max_iter": 10, "s": 2, "eta": 2.5}, (1, 4)),
        # like W&B, max_iter + s win over min_iter; s without max_iter is ignored
        ({"max_iter": 27, "s": 2, "min_iter": 1}, (3, 9)),
    ],
)
def test_max_iter_bands(spec: dict[str, Any], bands: tuple[int, ...]) -> None:
    assert rule({"type": "hyperband", **spec}).bands == bands


def test_min_iter_with_s_ignores_s() -> None:
    assert rule({"type": "hyperband", "min_iter": 4, "s": 5}).bands[:3] == (4, 12, 36)


@pytest.mark.parametrize(
    ("spec", "rungs"),
    [
        ({"min_iter": 1, "max_iter": 27}, (1, 3, 9)),  # max_iter is the top rung: not judged
        ({"min_iter": 1, "max_iter": 28}, (1, 3, 9, 27)),
        ({"min_iter": 2, "max_iter": 100}, (2, 6, 18, 54)),
        ({"min_iter": 4, "max_iter": 64, "eta": 2}, (4, 8, 16, 32)),
    ],
)
def test_asha_rungs(spec: dict[str, Any], rungs: tuple[int, ...]) -> None:
    r = rule({"type": "asha", **spec})
    assert isinstance(r, AshaStopping)
    assert r.bands == rungs


def test_asha_without_max_iter_is_open_ended() -> None:
    r = rule({"type": "asha", "min_iter": 5})
    assert r.bands[:4] == (5, 15, 45, 135)
    assert r.bands[-1] <= MAX_BAND


def test_defaults() -> None:
    hb = rule({"type": "hyperband", "min_iter": 3})
    assert isinstance(hb, HyperbandStopping)
    assert (hb.eta, hb.strict) == (3, False)
    assert rule({"type": "asha", "min_iter": 3}).eta == 3
    assert build_early_stopping(None, "loss", "minimize") is None


# --------------------------------------------------------------------------------------------
# hyperband: the rule

# Six running runs at band 2 (min_iter 2, eta 3: bands 2, 6, 18), band-2 values 1..6, and
# each run's best value so far is its band-2 value. floor(6 / 3) = 2, so the threshold is the
# third best value (3.0): runs strictly worse than it are stopped, the one equal to it is kept.
SIX = [run(f"r{v}", [v + 1.0, float(v), float(v) + 0.5]) for v in range(1, 7)]


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("goal", ["minimize", "maximize"])
def test_weak_runs_stopped_strong_kept(goal: str, strict: bool) -> None:
    r = rule({"type": "hyperband", "min_iter": 2, "strict": strict}, goal=goal)
    runs = SIX if goal == "minimize" else flip(SIX)
    assert stopped(r, runs) == ["r4", "r5", "r6"]


def test_reason_names_metric_value_iteration_threshold() -> None:
    r = rule({"type": "hyperband", "min_iter": 9, "strict": True}, "maximize", "test/accuracy")
    accs = [0.90, 0.80, 0.63, 0.60, 0.55, 0.50, 0.41]
    runs = [run(f"r{i}", [0.1] * 8 + [acc]) for i, acc in enumerate(accs)]
    decisions = {d.run_id: d.reason for d in r.decide(runs)}
    assert sorted(decisions) == ["r3", "r4", "r5", "r6"]
    assert decisions["r6"] == (
        "hyperband: test/accuracy 0.41 at iteration 9 is below the band threshold 0.63 "
        "(top 1/3 of 7 runs)"
    )
    loose = rule({"type": "hyperband", "min_iter": 2}, "minimize", "val/loss")
    (decision,) = loose.decide([run("a", [1.0, 1.0]), run("b", [3.0, 2.0, 2.5])])
    assert decision.reason == (
        "hyperband: best val/loss so far 2 (over 3 iterations) is above the iteration-2 band "
        "threshold 1 (top 1/3 of 2 runs)"
    )


def test_threshold_counts_every_state_and_the_run_itself() -> None:
    r = rule({"type": "hyperband", "min_iter": 1, "strict": True})
    # A lone run is its own threshold (floor(1/3) = 0): never stopped.
    assert stopped(r, [run("a", [5.0])]) == []
    # Finished, failed and stopped runs are evidence: threshold = 2nd best of 4 = 2.0.
    others = [run("f", [1.0], "finished"), run("x", [2.0], "failed"), run("s", [9.0], "stopped")]
    assert stopped(r, [*others, run("a", [5.0])]) == ["a"]
    assert stopped(r, [*others, run("a", [2.0])]) == []


def test_threshold_index_is_floor_n_over_eta() -> None:
    r = rule({"type": "hyperband", "min_iter": 1, "eta": 2.2})
    assert isinstance(r, HyperbandStopping)
    # exact decimal arithmetic: 33 / 2.2 == 15 (W&B's int(33 * (1 / 2.2)) gives 14)
    assert [r.threshold_index(n) for n in (1, 2, 3, 5, 11, 33)] == [0, 0, 1, 2, 5, 15]


def test_run_not_at_a_band_is_not_judged() -> None:
    r = rule({"type": "hyperband", "min_iter": 3, "strict": True})
    runs = [run("good", [1.0, 1.0, 1.0]), run("early", [50.0, 50.0])]
    assert stopped(r, runs) == []
    assert stopped(r, [runs[0], run("early", [50.0, 50.0, 50.0])]) == ["early"]


def test_between_bands_judged_at_the_latest_band_reached() -> None:
    """A run past band k but short of band k+1 is judged (again) at band k, and only there."""
    r = rule({"type": "hyperband", "min_iter": 2, "strict": True})  # bands 2, 6, 18
    leader = run("leader", [9.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], "finished")
    # 'late' was worse at iteration 2 and is judged on that value at iterations 2..5, however
    # well it does after the band ...
    for n_values in range(2, 6):
        late = run("late", [9.0, 4.0, 0.1, 0.1, 0.1][:n_values])
        assert stopped(r, [leader, late]) == ["late"]
    # ... and once it reaches band 6, band 2 is forgotten: at band 6 it is judged against the
    # runs that reached iteration 6 (the finished leader: 1.0 vs its 0.1).
    late = run("late", [9.0, 4.0, 0.1, 0.1, 0.1, 0.1])
    assert stopped(r, [leader, late]) == []


def test_passing_band_k_is_not_final_until_band_k_plus_1() -> None:
    """The threshold at band k moves as more runs reach it; a run between bands is re-judged."""
    r = rule({"type": "hyperband", "min_iter": 2, "strict": True})  # bands 2, 6, ...
    mid = run("mid", [5.0, 5.0, 5.0, 5.0])  # past band 2, short of band 6
    assert stopped(r, [mid, run("a", [6.0, 6.0])]) == ["a"]  # 2 runs: threshold = best (5.0)
    later = [run("b", [2.0, 2.0]), run("c", [3.0, 3.0])]
    # 4 runs at band 2: threshold = 2nd best = 3.0, so 'mid' (5.0) no longer passes band 2
    assert stopped(r, [mid, run("a", [6.0, 6.0]), *later]) == ["mid", "a"]
    # had it reached band 6 first, only band 6 would count (it is alone there)
    done_mid = run("mid", [5.0] * 6)
    assert stopped(r, [done_mid, run("a", [6.0, 6.0]), *later]) == ["a"]


def test_strict_vs_non_strict() -> None:
    """Non-strict judges the best value so far (whole history); strict the value at the band."""
    bands = {"type": "hyperband", "min_iter": 3}
    leaders = [run("a", [1.0, 1.0, 1.0]), run("b", [2.0, 2.0, 2.0], "finished")]
    # threshold at band 3 (3 runs, floor(3/3) = 1): the 2nd best band-3 value, 2.0
    improved_after = run("late", [9.0, 9.0, 8.0, 1.5])  # bad at iteration 3, better at 4
    good_before = run("peak", [0.5, 7.0, 8.0])  # good at iteration 1, bad at the band
    for candidate in (improved_after, good_before):
        runs = [*leaders, candidate]
        assert stopped(rule({**bands, "strict": False}), runs) == []
        assert stopped(rule({**bands, "strict": True}), runs) == [candidate.run_id]
        assert stopped(rule({**bands, "strict": True}, "maximize"), flip(runs)) == [
            candidate.run_id
        ]
        assert stopped(rule(bands, "maximize"), flip(runs)) == []


def test_ties_with_the_threshold_survive() -> None:
    r = rule({"type": "hyperband", "min_iter": 1, "strict": True})
    runs = [run(x, [1.0]) for x in "abcd"] + [run("e", [1.5])]
    assert stopped(r, runs) == ["e"]


# --------------------------------------------------------------------------------------------
# asha


def asha_example() -> list[RunProgress]:
    """Seven runs; rungs 1 and 3 (min_iter 1, max_iter 9, eta 3); loss."""
    return [
        run("A", [0.50, 0.40, 0.30, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3], "finished"),
        run("B", [0.80], "stopped"),
        run("C", [0.60, 0.55]),
        run("D", [0.70]),
        run("E", [0.45, 0.42, 0.28, 0.27]),
        run("F", [0.65, 0.50, 0.38]),
        run("G", [0.90, math.nan], "failed"),
    ]


def test_asha_hand_computed() -> None:
    r = rule({"type": "asha", "min_iter": 1, "max_iter": 9})
    assert r.bands == (1, 3)
    # Rung 1: 7 runs reached it (all states): .45 E, .50 A, .60 C, .65 F, .70 D, .80 B, .90 G.
    #   promote max(1, floor(7/3)) = 2: E and A (cutoff .50). C (.60) and D (.70) sit at rung 1
    #   and are stopped; E and F have moved on to rung 3, where they are judged instead.
    # Rung 3: A .30, E .28, F .38 -> promote max(1, floor(3/3)) = 1: E. F is stopped.
    decisions = {d.run_id: d.reason for d in r.decide(asha_example())}
    assert list(decisions) == ["C", "D", "F"]
    assert decisions["C"] == (
        "asha: loss 0.6 at rung 1 is not in the top 2 of the 7 runs that reached iteration 1 "
        "(top 1/3; cutoff 0.5)"
    )
    assert stopped(
        rule({"type": "asha", "min_iter": 1, "max_iter": 9}, "maximize"), flip(asha_example())
    ) == ["C", "D", "F"]
    # The same snapshot under hyperband (strict, same bands): the threshold at band 1 is the
    # value at index floor(7/3) = 2 (.60), so C survives there; at band 3 index 1 (.30).
    hb = rule({"type": "hyperband", "max_iter": 9, "s": 2, "strict": True})
    assert hb.bands == (1, 3)
    assert stopped(hb, asha_example()) == ["D", "F"]


def test_asha_promotes_at_least_one_and_first_arrival_survives() -> None:
    r = rule({"type": "asha", "min_iter": 2})
    assert stopped(r, [run("first", [9.0, 9.0])]) == []
    # two runs at rung 2, eta 3: floor(2/3) = 0 -> one promoted, the other stopped
    assert stopped(r, [run("a", [9.0, 9.0]), run("b", [1.0, 1.0])]) == ["a"]
    # six runs: two promoted; ties with the 2nd best value are promoted too
    six = [run(x, [0.0, v]) for x, v in zip("abcdef", [1, 2, 2, 3, 4, 5], strict=True)]
    assert stopped(r, six) == ["d", "e", "f"]


def test_asha_judges_value_at_rung_not_best_so_far() -> None:
    r = rule({"type": "asha", "min_iter": 2})
    runs = [run("a", [1.0, 1.0]), run("b", [0.1, 5.0, 0.1])]  # b: good before and after rung 2
    assert stopped(r, runs) == ["b"]


def test_asha_never_stops_a_run_past_max_iter() -> None:
    r = rule({"type": "asha", "min_iter": 1, "max_iter": 3})  # rung 1 only
    runs = [run("a", [1.0]), run("b", [5.0, 5.0]), run("c", [5.0, 5.0, 5.0])]
    assert stopped(r, runs) == ["b"]


# --------------------------------------------------------------------------------------------
# robustness


@pytest.mark.parametrize("kind", ["hyperband", "asha"])
def test_nan_and_inf_rank_last(kind: str) -> None:
    spec = {"type": kind, "min_iter": 1}
    if kind == "hyperband":
        spec["strict"] = True
    r = rule(spec)
    # A non-finite value never becomes a threshold or cutoff (a naive sort leaves NaN anywhere),
    # and -inf is not "the lowest loss": it is invalid too. 9 runs at band 1.
    values = [4.0, math.nan, 1.0, 6.0, -math.inf, 2.0, 5.0, math.inf, 3.0]
    runs = [run(f"r{i}", [v]) for i, v in enumerate(values)]
    non_finite = ["r1", "r4", "r7"]
    if kind == "hyperband":  # threshold: index floor(9/3) = 3 -> 4.0
        assert stopped(r, runs) == ["r1", "r3", "r4", "r6", "r7"]
    else:  # promote floor(9/3) = 3 runs: 1.0, 2.0, 3.0
        assert stopped(r, runs) == ["r0", "r1", "r3", "r4", "r6", "r7"]
    assert all(n in stopped(r, runs) for n in non_finite)
    # maximize: +inf is not "the best accuracy", it is invalid
    r_max = rule(spec, "maximize")
    assert stopped(r_max, [run("a", [0.5]), run("inf", [math.inf])]) == ["inf"]
    # a lone run whose value at the band is NaN is stopped (it cannot be in any top fraction)
    (decision,) = r.decide([run("lonely", [math.nan])])
    assert "not a finite number" in decision.reason


def test_nan_in_non_strict_history() -> None:
    r = rule({"type": "hyperband", "min_iter": 2})
    runs = [run("a", [1.0, 1.0]), run("b", [0.5, math.nan, math.nan]), run("c", [math.nan] * 3)]
    # b's best so far (0.5) is finite and good; c never logged a finite value
    assert stopped(r, runs) == ["c"]


def test_non_numbers_are_worst() -> None:
    r = rule({"type": "hyperband", "min_iter": 1, "strict": True})
    runs = [run("a", [1.0]), RunProgress("b", "running", [None]), run("c", [2.0])]  # type: ignore[list-item]
    assert stopped(r, runs) == ["b"]


@pytest.mark.parametrize("state", ["finished", "failed", "crashed", "killed", "stopped", "pending"])
@pytest.mark.parametrize("kind", ["hyperband", "asha"])
def test_only_running_runs_are_stopped(state: str, kind: str) -> None:
    r = rule({"type": kind, "min_iter": 1, **({"strict": True} if kind == "hyperband" else {})})
    runs = [run("good", [0.0, 0.0]), run("bad", [9.0, 9.0], state), run("nan", [math.nan], state)]
    assert stopped(r, runs) == []
    assert stopped(r, [*runs, run("bad2", [10.0, 10.0])]) == ["bad2"]


def test_deterministic_pure_and_shareable() -> None:
    r = rule({"type": "hyperband", "min_iter": 2, "strict": True})
    values = [list(x.values) for x in SIX]
    runs = [RunProgress(x.run_id, x.state, v) for x, v in zip(SIX, values, strict=True)]
    first = r.decide(runs)
    assert r.decide(runs) == first
    assert values == [list(x.values) for x in SIX]  # inputs untouched
    # the verdicts do not depend on the order runs are given in (only the output order does)
    shuffled = list(runs)
    random.Random(7).shuffle(shuffled)
    assert sorted(d.run_id for d in r.decide(shuffled)) == sorted(d.run_id for d in first)
    # one instance, many threads
    results: list[list[str]] = []

    def work() -> None:
        for _ in range(50):
            results.append(stopped(r, runs))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [["r4", "r5", "r6"]] * 200
    with pytest.raises(AttributeError):
        r.bands = (1,)  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# configuration errors


@pytest.mark.parametrize(
    ("spec", "goal", "fragments"),
    [
        ([("type", "hyperband")], "minimize", ["early_terminate must be a mapping"]),
        ({"min_iter": 3}, "minimize", ["early_terminate.type", "is required", "hyperband"]),
        ({"type": "median", "min_iter": 3}, "minimize", ["early_terminate.type", "'median'"]),
        ({"type": 3}, "minimize", ["early_terminate.type"]),
        ({"type": "hyperband"}, "minimize", ["min_iter", "max_iter", "e.g."]),
        ({"type": "hyperband", "eta": 3}, "minimize", ["min_iter", "max_iter"]),
        ({"type": "hyperband", "max_iter": 27}, "minimize", ["early_terminate.s", "required"]),
        (
            {"type": "hyperband", "min_iter": 3, "eta": 1.5},
            "minimize",
            ["early_terminate.eta", "at least 2"],
        ),
        ({"type": "hyperband", "min_iter": 3, "eta": 1}, "minimize", ["early_terminate.eta"]),
        (
            {"type": "hyperband", "min_iter": 3, "eta": "3"},
            "minimize",
            ["early_terminate.eta", "number"],
        ),
        ({"type": "hyperband", "min_iter": 3, "eta": True}, "minimize", ["early_terminate.eta"]),
        (
            {"type": "hyperband", "min_iter": 3, "eta": math.nan},
            "minimize",
            ["early_terminate.eta"],
        ),
        (
            {"type": "hyperband", "min_iter": 0},
            "minimize",
            ["early_terminate.min_iter", "at least 1"],
        ),
        (
            {"type": "hyperband", "min_iter": 2.5},
            "minimize",
            ["early_terminate.min_iter", "integer"],
        ),
        (
            {"type": "hyperband", "min_iter": "3"},
            "minimize",
            ["early_terminate.min_iter", "integer"],
        ),
        ({"type": "hyperband", "max_iter": 27, "s": 0}, "minimize", ["early_terminate.s"]),
        (
            {"type": "hyperband", "max_iter": 2, "s": 1},
            "minimize",
            ["early_terminate.max_iter", "no band"],
        ),
        (
            {"type": "hyperband", "min_iter": 3, "strict": "yes"},
            "minimize",
            ["early_terminate.strict"],
        ),
        (
            {"type": "hyperband", "min_iters": 3},
            "minimize",
            ["early_terminate.min_iters", "'min_iter'"],
        ),
        ({"type": "asha"}, "minimize", ["early_terminate.min_iter", "asha"]),
        ({"type": "asha", "min_iter": 3, "s": 2}, "minimize", ["early_terminate.s", "hyperband"]),
        ({"type": "asha", "min_iter": 3, "strict": True}, "minimize", ["early_terminate.strict"]),
        (
            {"type": "asha", "min_iter": 9, "max_iter": 9},
            "minimize",
            ["early_terminate.max_iter", "greater"],
        ),
        ({"type": "asha", "min_iter": 3, "eta": 1.9}, "minimize", ["early_terminate.eta"]),
        ({"type": "hyperband", "min_iter": 3}, "lower", ["metric.goal"]),
    ],
)
def test_config_errors(spec: Any, goal: str, fragments: list[str]) -> None:
    with pytest.raises(EarlyStoppingConfigError) as info:
        build_early_stopping(spec, "loss", goal)  # type: ignore[arg-type]
    for fragment in fragments:
        assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_config_needs_metric_name() -> None:
    with pytest.raises(EarlyStoppingConfigError, match=r"metric\.name"):
        build_early_stopping({"type": "hyperband", "min_iter": 3}, "", "minimize")


def test_direct_construction_is_validated() -> None:
    with pytest.raises(ValueError, match="bands"):
        HyperbandStopping("loss", "minimize", (3, 3))
    with pytest.raises(ValueError, match="eta"):
        AshaStopping("loss", "minimize", (1, 3), eta=1.5)
    with pytest.raises(ValueError, match="max_iter"):
        AshaStopping("loss", "minimize", (1, 3), max_iter=3)


# --------------------------------------------------------------------------------------------
# simulation: a controller evaluating after every new value


def simulate(
    spec: dict[str, Any], goal: str, seed: int, n_runs: int = 30, max_iter: int = 40
) -> tuple[list[float], dict[str, str]]:
    """30 runs with learning curves of varying quality, started at staggered times.

    Run i converges to ``asymptote[i]`` (lower is better; the best is clearly the best, the
    others are close to each other) at its own speed, with noise; they start in random order.
    Each tick every live run logs one value, and after each value the rule sees the whole
    sweep; stopped runs stop, runs that log ``max_iter`` values finish. Returns the
    asymptotes and the final state of each run.
    """
    rng = random.Random(seed)
    asymptotes = [0.1 + 0.9 * math.sqrt(i / (n_runs - 1)) for i in range(n_runs)]
    taus = [rng.uniform(4.0, 6.0) for _ in range(n_runs)]
    starts = [rng.randrange(0, 12) for _ in range(n_runs)]
    sign = 1.0 if goal == "minimize" else -1.0
    r = rule(spec, goal)
    values: dict[str, list[float]] = {f"run{i}": [] for i in range(n_runs)}
    states = {name: "pending" for name in values}

    def snapshot() -> list[RunProgress]:
        return [RunProgress(name, states[name], tuple(values[name])) for name in values]

    for tick in range(200):
        for i, name in enumerate(values):
            if tick < starts[i] or states[name] in ("stopped", "finished"):
                continue
            states[name] = "running"
            t = len(values[name]) + 1
            loss = asymptotes[i] + 2.0 * math.exp(-t / taus[i])
            values[name].append(sign * (loss + rng.gauss(0.0, 0.01)))
            if len(values[name]) >= max_iter:
                states[name] = "finished"
            for decision in r.decide(snapshot()):
                assert states[decision.run_id] == "running"
                states[decision.run_id] = "stopped"
        if all(s in ("stopped", "finished") for s in states.values()):
            break
    return asymptotes, states


def ranked(asymptotes: list[float]) -> list[str]:
    return [f"run{i}" for i in sorted(range(len(asymptotes)), key=asymptotes.__getitem__)]


@pytest.mark.parametrize("goal", ["minimize", "maximize"])
@pytest.mark.parametrize(
    "spec",
    [
        {"type": "hyperband", "min_iter": 3},
        {"type": "hyperband", "min_iter": 3, "strict": True},
        {"type": "hyperband", "max_iter": 27, "s": 2},
    ],
)
def test_simulation_hyperband_stops_most_bad_runs_never_the_best(
    spec: dict[str, Any], goal: str
) -> None:
    for seed in range(4):
        asymptotes, states = simulate(spec, goal, seed)
        by_quality = ranked(asymptotes)
        assert states[by_quality[0]] == "finished", (spec, seed)
        worst = by_quality[-10:]
        assert sum(states[name] == "stopped" for name in worst) >= 8, (spec, seed, states)
        assert sum(s == "stopped" for s in states.values()) >= 20


@pytest.mark.parametrize("goal", ["minimize", "maximize"])
def test_simulation_asha(goal: str) -> None:
    """ASHA halves harder (about 30 / 3**3 runs survive 3 rungs) and decides with the runs that
    have reached a rung so far: a slow starter that reaches a rung just behind a faster, worse
    run is stopped (2 runs at a rung: 1 promoted). So: a top-3 run finishes, most bad ones stop."""
    for seed in range(4):
        asymptotes, states = simulate({"type": "asha", "min_iter": 3, "max_iter": 40}, goal, seed)
        by_quality = ranked(asymptotes)
        assert any(states[name] == "finished" for name in by_quality[:3]), (seed, states)
        assert sum(states[name] == "stopped" for name in by_quality[-10:]) >= 8
        assert sum(s == "finished" for s in states.values()) <= 3
