import pytest

from .support import System


@pytest.fixture(autouse=True)
def memory_in_bounds():
    """Fail a test in which a System's kernel touched memory outside its allocations."""
    System.made.clear()
    yield
    bad = [v for s in System.made for v in s.memory.violations]
    System.made.clear()
    assert not bad, f"accesses outside live allocations: {bad[:5]}"


@pytest.fixture
def system():
    return System()


@pytest.fixture
def softsystem():
    return System(allow_soft=True)
