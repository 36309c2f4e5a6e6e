import pytest

from btc_platform_tests.conftest import graph_runner


@pytest.fixture
def run(platform_env, instance):
    """Materialize a selection of the real definitions with resources from the test environment."""
    return graph_runner(instance)
