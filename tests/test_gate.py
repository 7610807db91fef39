"""`edgebench gate` over synthetic stores: verdicts, exit codes, refusals, REF forms, outputs.

Samples are seeded normal draws at CV 3 % around a median, as in tests/test_stats.py.
"""

from __future__ import annotations

import json
import shutil
import statistics
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from conftest import make_record, run_main
from edgebench.errors import ConfigError
from edgebench.gate import refs, thresholds
from edgebench.gate.engine import run_gate
from edgebench.results.store import Store

HW = dict(cpu_model="AMD EPYC 7763 64-Core Processor", cpu_cores_logical=2,
          ram_total_mb=7951.0, os="Linux 6.8.0-1017-azure (x86_64)")
BASE, CAND = "20260101T000000Z-aaaaaa", "20260102T000000Z-bbbbbb"
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def draw(median: float, n: int, seed: int, cv: float = 0.03) -> list[float]:
    return [float(v) for v in median * (1 + cv * np.random.default_rng(seed).standard_normal(n))]


def speed(session: str, decode: float, *, n: int = 10, seed: int = 0, run_key: str = "k1",
          ttft: float = 150.0, mem: float | None = 338.0, day: int = 0, **kw):
    d, t = draw(decode, n, seed), draw(ttft, n, seed + 500)
    row = dict(session_id=session, run_key=run_key, kind="speed", measurement="measured",
               decode_tok_s=statistics.median(d), decode_tok_s_samples=d,
               ttft_ms=statistics.median(t), ttft_ms_samples=t, peak_mem_mb=mem,
               framework_version="0.3.36", artifact_sha256="art1", repetitions=n, launches=1,
               machine_id=f"runner-{session[-6:]}", started_at=T0 + timedelta(days=day), **HW)
    return make_record(**{**row, **kw})


def quality(session: str, kld: list[float] | None, nll: list[float] | None, *, day: int = 0,
            **kw):
    row = dict(session_id=session, run_key="q1", kind="quality", measurement="measured",
               quality_reference="llama-cpp:f16",
               reference_storage="uint16", corpus_sha256="corp", n_ctx=512, chunks=8,
               chunk_kld=kld, chunk_nll=nll,
               kld_mean=None if kld is None else float(np.mean(kld)),
               ppl=None if nll is None else float(np.exp(np.mean(nll))),
               framework_version="0.3.36", artifact_sha256="art1",
               started_at=T0 + timedelta(days=day), **HW)
    return make_record(**{**row, **kw})


def write(root: Path, base_rows, cand_rows) -> Store:
    st = Store(root)
    st.write_session(BASE, base_rows)
    st.write_session(CAND, cand_rows)
    return st


@pytest.fixture
def store(tmp_path):
    return tmp_path / "store"  # the conftest's EDGEBENCH_STORE


def gate(capsys, *args):
    return run_main(["gate", "--baseline", BASE, "--candidate", CAND, *args], capsys)


def verdicts(out: str) -> dict[tuple[str, str], dict]:
    data = json.loads(out)
    return {(f["run_key"], f["metric"]): f for f in data["findings"]}


# --- the three canonical cases ------------------------------------------------------------------

def test_ten_percent_decode_regression_over_ten_samples_fails(store, capsys):
    write(store, [speed(BASE, 100, seed=1)], [speed(CAND, 90, seed=2, day=1)])
    code, out, err = gate(capsys, "--format", "json")
    assert code == 1, err
    f = verdicts(out)[("k1", "decode_tok_s")]
    assert f["verdict"] == "regressed" and f["change"] == pytest.approx(0.9, abs=0.03)
    assert f["high"] < 1 and f["p_value"] < 0.01 and f["method"] == "samples"
    assert json.loads(out)["result"] == "fail"
    code, out, _ = gate(capsys)  # the terminal table: the verdict is the last line
    assert code == 1 and out.strip().splitlines()[-1].startswith("edgebench gate: FAIL")
    assert "decode_tok_s" in out.strip().splitlines()[-1]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("shift", [0.98, 1.02])
def test_two_percent_noise_does_not_fail(store, capsys, seed, shift):
    write(store, [speed(BASE, 100, seed=seed)], [speed(CAND, 100 * shift, seed=seed + 50)])
    code, out, err = gate(capsys, "--format", "json")
    assert code == 0, err
    assert verdicts(out)[("k1", "decode_tok_s")]["verdict"] in ("unchanged", "inconclusive")


def test_thirty_percent_with_two_samples_is_inconclusive_loudly_and_strict_fails(store, capsys):
    write(store, [speed(BASE, 100, n=2, seed=3)], [speed(CAND, 70, n=2, seed=4)])
    code, out, _ = gate(capsys)
    assert code == 0
    first = out.splitlines()[0]
    assert first.startswith("!!") and "INCONCLUSIVE" in first  # shown first, loudly
    assert "cannot reach p <= 0.05" in out and "--repetitions 4" in out
    code, out, _ = gate(capsys, "--format", "json")
    f = verdicts(out)[("k1", "decode_tok_s")]
    assert f["verdict"] == "inconclusive" and f["samples_needed"] == 4
    code, out, _ = gate(capsys, "--strict")
    assert code == 1 and "FAIL" in out.strip().splitlines()[-1]


# --- conditions ---------------------------------------------------------------------------------

def test_different_hardware_is_refused_and_allowed_with_the_flag(store, capsys):
    other = dict(cpu_model="Intel(R) Xeon(R) Platinum 8370C", cpu_cores_logical=4)
    write(store, [speed(BASE, 100, seed=1)], [speed(CAND, 100, seed=2, **other)])
    code, out, err = gate(capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: refused")
    assert "hardware" in err and "AMD EPYC" in err and "Xeon" in err
    assert "--allow-different-conditions" in err
    code, out, err = gate(capsys, "--allow-different-conditions", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["differences"] and "hardware differs" in data["findings"][0]["warnings"]


def test_new_ci_runner_same_hardware_compares(store, capsys):
    # machine_id differs (runner-aaaaaa vs runner-bbbbbb), the fingerprint does not; a new
    # kernel version does not count either
    write(store, [speed(BASE, 100, seed=1)],
          [speed(CAND, 100, seed=2, os="Linux 6.11.0-1010-azure (x86_64)", ram_total_mb=7960)])
    code, _, err = gate(capsys)
    assert code == 0, err


@pytest.mark.parametrize("change, what", [
    (dict(artifact_sha256="art2"), "artifact (artifact_sha256)"),
    (dict(model_sha256="def", run_key="k2"), "model file (model_sha256)"),
])
def test_different_model_or_artifact_is_refused(store, capsys, change, what):
    write(store, [speed(BASE, 100, seed=1)], [speed(CAND, 100, seed=2, **change)])
    code, _, err = gate(capsys)
    assert code == 2 and what in err
    code, out, err = gate(capsys, "--allow-different-conditions", "--format", "json")
    assert code == 0, err
    assert verdicts(out)[(change.get("run_key", "k1"), "decode_tok_s")]["verdict"] != "missing"


def test_runtime_version_bump_is_allowed_and_shown(store, capsys):
    write(store, [speed(BASE, 100, seed=1, framework_version="0.3.16")],
          [speed(CAND, 100, seed=2)])
    code, out, err = gate(capsys)
    assert code == 0
    assert "runtime version differs: llama-cpp 0.3.16 -> 0.3.36" in out
    code, out, _ = gate(capsys, "--format", "json")
    assert verdicts(out)[("k1", "decode_tok_s")]["versions"] == ["0.3.16", "0.3.36"]


def test_machine_busy_rows_are_called_out(store, capsys):
    write(store, [speed(BASE, 100, seed=1)],
          [speed(CAND, 100, seed=2, machine_busy=True, flags=["machine-busy"])])
    code, out, err = gate(capsys, "--format", "md")
    assert code == 0
    assert "candidate: machine busy" in out and "re-measure on a quiet machine" in out


# --- methods: single values, paired quality -----------------------------------------------------

def test_memory_is_judged_on_its_single_value_and_says_so(store, capsys):
    write(store, [speed(BASE, 100, seed=1, mem=300)], [speed(CAND, 100, seed=2, mem=330)])
    code, out, _ = gate(capsys, "--format", "json")
    f = verdicts(out)[("k1", "peak_mem_mb")]
    assert code == 1 and f["verdict"] == "regressed" and f["method"] == "single value"
    assert f["p_value"] is None and f["low"] is None and "single value: no interval" in f["reason"]
    write(store, [speed(BASE, 100, seed=1, mem=300)], [speed(CAND, 100, seed=2, mem=306)])
    code, out, _ = gate(capsys, "--format", "json")
    assert code == 0 and verdicts(out)[("k1", "peak_mem_mb")]["verdict"] == "unchanged"


def chunks(mean: float, seed: int, n: int = 8) -> list[float]:
    return draw(mean, n, seed, cv=0.2)


def test_quality_is_paired_by_chunk(store, capsys):
    kld = chunks(0.02, 1)
    nll = chunks(2.0, 2)
    worse_kld = [k + 0.03 + 0.002 * i % 3 for i, k in enumerate(kld)]
    worse_nll = [v * 1.05 for v in nll]
    write(store, [quality(BASE, kld, nll)], [quality(CAND, worse_kld, worse_nll, day=1)])
    code, out, err = gate(capsys, "--fail-on", "kld_mean:+0.01", "--fail-on", "ppl:+2%",
                          "--format", "json")
    assert code == 1, err
    v = verdicts(out)
    assert v[("q1", "kld_mean")]["verdict"] == "regressed"
    assert v[("q1", "kld_mean")]["method"] == "paired chunks"
    ppl = v[("q1", "ppl")]
    assert ppl["verdict"] == "regressed" and ppl["relative"]
    assert ppl["change"] == pytest.approx(np.exp(np.mean(worse_nll) - np.mean(nll)))
    # the same chunks again, a hair apart: unchanged
    write(store, [quality(BASE, kld, nll)],
          [quality(CAND, [k + 1e-4 for k in kld], nll, day=1)])
    code, out, _ = gate(capsys, "--format", "json")  # defaults: kld_mean:+0.01
    assert code == 0 and verdicts(out)[("q1", "kld_mean")]["verdict"] == "unchanged"


def test_quality_rows_without_chunks_compare_point_values_labelled(store, capsys):
    write(store, [quality(BASE, None, None, kld_mean=0.02)],
          [quality(CAND, None, None, kld_mean=0.05, day=1)])
    code, out, _ = gate(capsys, "--format", "json")
    f = verdicts(out)[("q1", "kld_mean")]
    assert code == 1 and f["method"] == "point values" and "no interval" in f["reason"]


def test_quality_across_runtime_builds_is_not_compared_unless_allowed(store, capsys):
    kld = chunks(0.02, 1)
    write(store, [speed(BASE, 100, seed=1, framework_version="0.3.16"),
                  quality(BASE, kld, None, framework_version="0.3.16")],
          [speed(CAND, 100, seed=2), quality(CAND, [k + 0.05 for k in kld], None, day=1)])
    code, out, _ = gate(capsys, "--format", "json")
    f = verdicts(out)[("q1", "kld_mean")]
    assert code == 0 and f["verdict"] == "missing" and "across builds" in f["reason"]
    code, out, _ = gate(capsys, "--format", "json", "--allow-different-conditions")
    assert code == 1 and verdicts(out)[("q1", "kld_mean")]["verdict"] == "regressed"


# --- bad input ----------------------------------------------------------------------------------

GOOD = [
    ("decode_tok_s:-5%", "decode_tok_s", True, 0.05),
    ("ttft_ms:+10%", "ttft_ms", True, 0.10),
    (" ttft_ms : + 2.5 % ", "ttft_ms", True, 0.025),
    ("peak_mem_mb:+5%", "peak_mem_mb", True, 0.05),
    ("peak_mem_mb:+50", "peak_mem_mb", False, 50.0),
    ("kld_mean:+0.01", "kld_mean", False, 0.01),
    ("kld_mean:+1e-3", "kld_mean", False, 0.001),
    ("ppl:+1%", "ppl", True, 0.01),
    ("tpot_ms:+3", "tpot_ms", False, 3.0),
    ("top1_agree:-0.02", "top1_agree", False, 0.02),
]


@pytest.mark.parametrize("text, metric, relative, limit", GOOD)
def test_threshold_grammar_good(text, metric, relative, limit):
    t = thresholds.parse(text)
    assert (t.metric, t.relative) == (metric, relative) and t.limit == pytest.approx(limit)


BAD = [
    ("decode_tok_s:+5%", "bad direction is -"),
    ("ttft_ms:-10%", "bad direction is +"),
    ("decode_tok_s:5%", "the sign says which direction is bad"),
    ("decode_speed:-5%", "unknown metric 'decode_speed'"),
    (":+5%", "no metric"),
    ("decode_tok_s", "expected METRIC:SIGN SIZE"),
    ("decode_tok_s:-x%", "'x' is not a number"),
    ("decode_tok_s:-0%", "positive number"),
    ("decode_tok_s:-inf%", "positive number"),
    ("decode_tok_s:-100%", "cannot happen"),
    ("kld_mean:+1%", "give it in nats"),
    ("ppl:+0.1", "give it in percent"),
    ("ttft_ms:+10%%", "expected METRIC:SIGN SIZE"),
]


@pytest.mark.parametrize("text, why", BAD)
def test_threshold_grammar_bad(text, why):
    with pytest.raises(ConfigError) as e:
        thresholds.parse(text)
    msg = str(e.value)
    assert why in msg and thresholds.GRAMMAR in msg and "decode_tok_s (-)" in msg
    assert "\n" not in msg


def test_bad_threshold_and_margin_through_the_cli(store, capsys):
    write(store, [speed(BASE, 100, seed=1)], [speed(CAND, 100, seed=2)])
    code, _, err = gate(capsys, "--fail-on", "decode_tok_s:+5%")
    assert code == 2 and err.startswith("error: bad --fail-on") and err.count("\n") == 1
    code, _, err = gate(capsys, "--fail-on", "ttft_ms:+5%", "--fail-on", "ttft_ms:+9%")
    assert code == 2 and "twice" in err
    code, _, err = gate(capsys, "--margin", "five")
    assert code == 2 and "bad --margin" in err
    code, out, _ = gate(capsys, "--margin", "2%", "--format", "json")
    assert code == 0 and json.loads(out)["margin"] == pytest.approx(0.02)


def test_threshold_on_a_metric_the_rows_lack_names_what_they_have(store, capsys):
    write(store, [speed(BASE, 100, seed=1)], [speed(CAND, 100, seed=2)])
    code, _, err = gate(capsys, "--fail-on", "kld_mean:+0.01")
    assert code == 2 and "neither side" in err and "decode_tok_s" in err and "ttft_ms" in err


def test_missing_samples_on_both_sides_is_bad_input(store, capsys):
    write(store, [speed(BASE, 100, seed=1, decode_tok_s_samples=None, ttft_ms_samples=None)],
          [speed(CAND, 100, seed=2, decode_tok_s_samples=None, ttft_ms_samples=None)])
    code, _, err = gate(capsys, "--fail-on", "decode_tok_s:-5%")
    assert code == 2 and "decode_tok_s_samples" in err and "neither side" in err


def test_samples_on_one_side_only_is_missing(store, capsys):
    write(store, [speed(BASE, 100, seed=1, decode_tok_s_samples=None)],
          [speed(CAND, 100, seed=2)])
    code, out, _ = gate(capsys, "--format", "json")
    f = verdicts(out)[("k1", "decode_tok_s")]
    assert code == 0 and f["verdict"] == "missing" and "only its median" in f["reason"]


def test_no_shared_run_lists_some_of_each(store, capsys):
    write(store, [speed(BASE, 100, run_key=f"base{i}", prompt_tokens=8 + i) for i in range(5)],
          [speed(CAND, 100, run_key="cand0", prompt_tokens=999)])
    code, _, err = gate(capsys)
    assert code == 2 and "share no run" in err and err.count("\n") == 1
    assert "(base0" in err and "and 2 more" in err and "(cand0" in err


def test_one_sided_runs_and_failed_candidates_are_missing(store, capsys):
    write(store, [speed(BASE, 100, seed=1), speed(BASE, 100, run_key="k2", prompt_tokens=64)],
          [speed(CAND, 100, seed=2),
           make_record(session_id=CAND, run_key="k2", prompt_tokens=64, status="error",
                       message="llama_decode returned -1", **HW)])
    code, out, _ = gate(capsys, "--format", "json")
    f = verdicts(out)[("k2", "decode_tok_s")]
    assert code == 0 and f["verdict"] == "missing"
    assert "no ok row (latest: error: llama_decode returned -1)" in f["reason"]


# --- REF forms ----------------------------------------------------------------------------------

def test_every_ref_form(store, tmp_path, capsys):
    st = write(store, [speed(BASE, 100, seed=1)], [speed(CAND, 90, seed=2, day=1)])
    side = refs.resolve("latest", st)
    assert side.sessions == [CAND] and side.label == f"session {CAND}"
    assert refs.resolve("latest~1", st).sessions == [BASE]
    assert refs.resolve(BASE, st).sessions == [BASE]
    assert refs.resolve(BASE[:10], st).sessions == [BASE]  # a unique prefix
    file = store / f"{CAND}.parquet"
    assert refs.resolve(str(file), st).label.startswith("file ")
    folder = tmp_path / "one-file"
    folder.mkdir()
    shutil.copy(store / f"{BASE}.parquet", folder)
    assert refs.resolve(str(folder), st).sessions == [BASE]
    whole = refs.resolve(str(store), st)
    assert whole.sessions == [BASE, CAND] and "2 sessions" in whole.label
    for b, c in (("latest~1", "latest"), (BASE, str(file)), (str(folder), CAND)):
        code, out, err = run_main(["gate", "--baseline", b, "--candidate", c, "--format",
                                   "json"], capsys)
        assert code == 1 and json.loads(out)["result"] == "fail", (b, c, err)


def test_bad_refs(store, capsys):
    st = write(store, [speed(BASE, 100, seed=1)], [speed(CAND, 100, seed=2, day=1)])
    with pytest.raises(ConfigError, match="names nothing.*newest sessions: 20260102"):
        refs.resolve("nope", st)
    with pytest.raises(ConfigError, match="has only 2 sessions"):
        refs.resolve("latest~2", st)
    with pytest.raises(ConfigError, match="start of 2 sessions"):
        refs.resolve("202601", st)
    with pytest.raises(ConfigError, match="same rows"):
        refs.resolve_pair("latest", CAND, st)
    code, _, err = run_main(["gate", "--baseline", "latest", "--candidate", "latest"], capsys)
    assert code == 2 and "same rows" in err
    code, _, err = run_main(["gate", "--baseline", "latest"], capsys)
    assert code == 2 and "--candidate" in err
    empty = Store(store.parent / "empty")
    with pytest.raises(ConfigError, match="only 0 sessions"):
        refs.resolve("latest", empty)


def test_an_older_schema_file_is_read(store, capsys):
    old = Path(__file__).parent / "data" / "store-v2-row.parquet"
    row = refs.resolve(str(old), Store(store)).rows[0]
    d = [float(v) for v in row["decode_tok_s_samples"]]
    fields = {k: v for k, v in row.items() if v is not None}
    fields.update(session_id=CAND, started_at=T0 + timedelta(days=400), machine_id="x",
                  decode_tok_s_samples=[v * 0.99 for v in d])
    cand = make_record(**fields)
    Store(store).write_session(CAND, [cand])
    code, out, err = run_main(["gate", "--baseline", str(old), "--candidate", CAND,
                               "--format", "json"], capsys)
    assert code == 0, err
    v = verdicts(out)
    # peak_mem_mb predates v3: both rows are compared on peak_rss_mb, and say so
    assert "peak_rss_mb" in v[("bcf9cea81a61c672", "peak_mem_mb")]["reason"]
    assert v[("bcf9cea81a61c672", "decode_tok_s")]["verdict"] == "inconclusive"


# --- outputs ------------------------------------------------------------------------------------

def test_markdown_json_csv_and_junit_outputs(store, tmp_path, capsys):
    write(store, [speed(BASE, 100, seed=1), speed(BASE, 100, n=2, seed=5, run_key="k2",
                                                  prompt_tokens=64)],
          [speed(CAND, 90, seed=2), speed(CAND, 70, n=2, seed=6, run_key="k2",
                                          prompt_tokens=64)])
    junit = tmp_path / "gate.xml"
    code, out, _ = gate(capsys, "--format", "md", "--junit", str(junit))
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("**edgebench gate: FAIL")
    assert any(x.startswith("> ") and "INCONCLUSIVE" in x for x in lines)
    head = next(i for i, x in enumerate(lines) if x.startswith("| run |"))
    assert lines[head + 1].startswith("|---") and "**REGRESSED**" in out
    assert all(ord(ch) < 0x2000 for ch in out)  # markers are words, not emoji
    root = ET.parse(junit).getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == 6 and root.get("failures") == "1"  # 2 runs x 3 default metrics
    failed = [(c.get("classname"), c.get("name")) for c in cases if c.find("failure") is not None]
    assert failed == [("m llama-cpp q4_k_m cpu p8/n4 t2", "decode_tok_s:-5%")]
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert skipped and "inconclusive" in skipped[0].find("skipped").get("message")
    code, _, _ = gate(capsys, "--strict", "--junit", str(junit))
    root = ET.parse(junit).getroot()
    # the n=2 run: its decode and ttft are inconclusive (too few to claim no change), memory
    # is judged on single values: decode 10 % down fails, and under --strict both n=2 ones
    assert root.get("failures") == "3" and root.get("skipped") == "0"
    code, out, _ = gate(capsys, "--format", "json")
    data = json.loads(out)
    assert data["exit_code"] == 1 and {t["expression"] for t in data["thresholds"]} == set(
        thresholds.DEFAULTS) - {"kld_mean:+0.01"}
    code, out, err = gate(capsys, "--format", "csv")
    assert out.splitlines()[0].startswith("run,metric,") and "edgebench gate: FAIL" in err


def test_library_api_without_the_cli(store):
    st = write(store, [speed(BASE, 100, seed=1)], [speed(CAND, 90, seed=2)])
    base, cand = refs.resolve_pair(BASE, CAND, st)
    rep = run_gate(base, cand, thresholds.parse_all(["decode_tok_s:-5%"]))
    assert rep.exit_code == 1 and [f.verdict for f in rep.findings] == ["regressed"]
