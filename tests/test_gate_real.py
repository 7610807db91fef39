"""`edgebench gate` on two real smoke runs of one llama.cpp build (Gemma 3 270M Q4_K_M).

Two sessions of the same code on the same machine are the null case: no metric may be
`regressed` (unless the harness flagged the run machine-busy: other people's work on a shared
machine, which the gate names on the run); a pair that regresses gets a second pair, as a
shared VM's speed can drift between sessions. The test prints every verdict, so an
all-inconclusive gate (a noisy machine, too few repetitions) is visible in the output rather
than passing silently.
"""

from __future__ import annotations

import json

import pytest

from conftest import needs_llama, run_main

pytestmark = [needs_llama, pytest.mark.llama_cpp]


def _gate_two_runs(store: str, capsys) -> tuple[int, dict]:
    for _ in range(2):
        code, _, err = run_main(["run", "--store", store, "--repetitions", "5",
                                 "--new-tokens", "32", "--quiet", "--format", "csv"], capsys)
        assert code == 0, err
    code, out, err = run_main(["gate", "--store", store, "--baseline", "latest~1",
                               "--candidate", "latest", "--format", "json"], capsys)
    assert code in (0, 1), err
    data = json.loads(out)
    with capsys.disabled():
        print(f"\ngate latest~1 -> latest: {data['result']}, {data['counts']}")
        for f in data["findings"]:
            print(f"  {f['metric']:>12} {f['verdict']:<12} {f['baseline']:.4g} -> "
                  f"{f['candidate']:.4g}  change {f['change']:.4f} "
                  f"[{f['low'] if f['low'] is None else round(f['low'], 4)}, "
                  f"{f['high'] if f['high'] is None else round(f['high'], 4)}] "
                  f"p={f['p_value']}  {f['reason']}")
        for note in data["notes"]:
            print(f"  note: {note}")
    return code, data


def _unexplained(data: dict) -> list[dict]:
    """Regressions the harness did not explain: the one excuse between two runs of one build
    is other work on the machine (machine-busy), which the gate names on the run."""
    return [f for f in data["findings"] if f["verdict"] == "regressed"
            and not any("machine busy" in w for w in f["warnings"])]


def test_two_runs_of_one_build_do_not_regress(tmp_path, capsys):
    # a shared VM's speed can drift more than the 5 % limit between two sessions minutes apart
    # without any process the busy probe sees (seen once in CI: decode 55.7 -> 52.0 tok/s); a
    # regression of the build itself repeats, so the null case gets a second pair before failing
    for attempt in range(2):
        code, data = _gate_two_runs(str(tmp_path / f"gate-store-{attempt}"), capsys)
        verdicts = {f["verdict"] for f in data["findings"]}
        assert verdicts, "the gate compared nothing"
        assert "missing" not in verdicts
        if not _unexplained(data):
            break
    assert not _unexplained(data), _unexplained(data)
    assert code == 0 or all(any("machine busy" in w for w in f["warnings"])
                            for f in data["findings"] if f["verdict"] == "regressed")
