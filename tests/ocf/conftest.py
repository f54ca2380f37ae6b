import pytest

from .support import System


@pytest.fixture
def system():
    return System()


@pytest.fixture
def softsystem():
    return System(allow_soft=True)
