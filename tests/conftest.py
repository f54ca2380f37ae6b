"""Shared fixtures: the backend parameter, so one test runs on both simulators,
and the rule that a kernel catch-all firing fails the test."""

import pytest

from sim.kernel import Kernel

BACKENDS = [
    "pysim",
    pytest.param("verilator", marks=pytest.mark.verilator),
]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "expect_catchall: the test provokes a kernel catch-all on purpose "
        "(a driver or consumer that raises); others fail when one fires")


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture(autouse=True)
def no_catchall(request, monkeypatch):
    """Fail a test in which any in-process Kernel logged a "... raised ..." line.

    A catch-all (``Kernel.catchall``) turns an internal exception into an
    errno; it must never fire in normal or hostile use. Runs on the Verilator
    backend happen in a child process and report ``kernel_catchalls`` instead.
    """
    raised: list[str] = []
    printf = Kernel.printf

    def recording_printf(self, msg):
        if " raised " in msg:
            raised.append(msg)
        printf(self, msg)
    monkeypatch.setattr(Kernel, "printf", recording_printf)
    yield raised
    if raised and request.node.get_closest_marker("expect_catchall") is None:
        pytest.fail(f"kernel catch-all fired: {raised[:3]}", pytrace=False)
