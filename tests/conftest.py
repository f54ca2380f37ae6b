"""Shared fixtures: the backend parameter, so one test runs on both simulators."""

import pytest

BACKENDS = [
    "pysim",
    pytest.param("verilator", marks=pytest.mark.verilator),
]


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param
