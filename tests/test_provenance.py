"""The ``measurement`` column per part (results.provenance): table tests."""

import math

import pytest

from edgebench.results import provenance as p


@pytest.mark.parametrize("value, numerics, timings", [
    (None, "measured", "measured"),  # older files: NULL is measured
    (math.nan, "measured", "measured"),  # pandas' missing value
    ("", "measured", "measured"),
    ("measured", "measured", "measured"),
    ("simulated", "simulated", "simulated"),
    ("estimated", "estimated", "estimated"),
    ("imported:llama-bench", "imported:llama-bench", "imported:llama-bench"),
    ("numerics=measured;timings=simulated", "measured", "simulated"),
    ("timings=simulated;numerics=measured", "measured", "simulated"),  # order free
    ("timings=estimated", "measured", "estimated"),  # a part left out is measured
    # an unknown part or a malformed item: nothing of the row counts as measured
    ("numerics=measured;energy=simulated", "numerics=measured;energy=simulated",
     "numerics=measured;energy=simulated"),
    ("numerics=;timings=measured", "numerics=;timings=measured",
     "numerics=;timings=measured"),
    ("garbage", "garbage", "garbage"),
])
def test_parse(value, numerics, timings):
    assert p.parse(value) == {"numerics": numerics, "timings": timings}
    assert p.numerics_measured(value) == (numerics == "measured")
    assert p.timings_measured(value) == (timings == "measured")


@pytest.mark.parametrize("numerics, timings, value", [
    ("measured", "measured", "measured"),
    ("simulated", "simulated", "simulated"),
    ("measured", "simulated", "numerics=measured;timings=simulated"),
    ("measured", "estimated", "numerics=measured;timings=estimated"),
    ("imported:qai-hub-models", "imported:qai-hub-models", "imported:qai-hub-models"),
])
def test_compose_round_trips(numerics, timings, value):
    assert p.compose(numerics=numerics, timings=timings) == value
    assert p.parse(value) == {"numerics": numerics, "timings": timings}


@pytest.mark.parametrize("bad", ["simulate", "imported:", "imported", "", "Measured"])
def test_compose_refuses_unknown_kinds(bad):
    with pytest.raises(ValueError, match="unknown measurement kind"):
        p.compose(numerics=bad, timings="measured")


def test_simulator_quality_constant():
    assert p.SIMULATOR_QUALITY == p.compose(numerics="measured", timings="simulated")


@pytest.mark.parametrize("value, text", [
    (None, ""), ("measured", ""), ("simulated", "simulated"),
    ("numerics=measured;timings=simulated", "simulated timings"),
    ("numerics=simulated;timings=estimated", "simulated numerics, estimated timings"),
])
def test_label(value, text):
    assert p.label(value) == text


def test_kind_refuses_unknown_part():
    with pytest.raises(ValueError, match="unknown part"):
        p.kind("measured", "energy")
