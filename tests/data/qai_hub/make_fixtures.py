"""Write the AI Hub profile fixtures with the qai_hub client's own protobuf classes and its own
converter (``qai_hub.client._profile_pb_to_python_dict``, what ``download_profile`` returns), so
their keys are the client's, verbatim. Run: ``python tests/data/qai_hub/make_fixtures.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
MB = 2**20


def profile_pb(layers: list[tuple[str, str, str]], exec_us: int, runs_us: list[int],
               peak_mb: tuple[int, int], warm_load_us: int = 120_000):
    """A ProfileDetail as AI Hub sends it (format 1.7): layers (name, type, unit)."""
    from qai_hub import public_api_pb2 as pb

    mem = pb.ProfileDetail.MemoryUsage
    rng = pb.Range
    return pb.ProfileDetail(
        major_version=1, minor_version=7, execution_time=exec_us,
        after_execution_peak_memory=peak_mb[1] * MB, cold_load_time=900_000,
        warm_load_time=warm_load_us, compile_time=2_000_000,
        execution_memory=mem(increase=rng(lower=1 * MB, upper=2 * MB),
                             peak=rng(lower=peak_mb[0] * MB, upper=peak_mb[1] * MB)),
        all_execution_times=runs_us, all_warm_load_times=[warm_load_us],
        layer_details=[pb.LayerDetail(
            name=n, layer_type_name=t, compute_unit=getattr(pb, f"COMPUTE_UNIT_{u}"),
            execution_time=10 + i) for i, (n, t, u) in enumerate(layers)],
        tool_versions=[pb.ToolVersion(name="QAIRT", version="2.37.1.250807093845_124904")],
    )


def as_dict(detail) -> dict:
    from qai_hub.client import _profile_pb_to_python_dict

    # a JSON round trip: the file download_profile(filename) writes (tuples become lists)
    return json.loads(json.dumps(_profile_pb_to_python_dict(detail)))


def fixtures() -> dict[str, object]:
    npu = [(f"/model/layers.{i}/MatMul", "MatMul", "NPU") for i in range(5)]
    single = as_dict(profile_pb(npu, 4_250, [4_300, 4_250, 4_200], (30, 34)))
    fallback = as_dict(profile_pb(
        npu[:3] + [("/model/Gather", "Gather", "GPU"), ("/model/Softmax", "Softmax", "CPU"),
                   ("/model/Reciprocal", "Reciprocal", "CPU")],
        9_800, [9_800], (40, 48)))
    llm = {
        "prompt_processor": as_dict(profile_pb(npu, 52_000, [52_000, 51_500], (300, 320))),
        "token_generator": as_dict(profile_pb(npu, 12_500, [12_500, 12_400], (290, 310))),
    }
    return {"gemma-3-270m_w8a16_jgn1x2k3p_results.json": single,
            "cpu_fallback.json": fallback, "llm_split.json": llm}


def main() -> None:
    for name, doc in fixtures().items():
        (HERE / name).write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
