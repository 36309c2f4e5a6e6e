import dagster as dg
import pytest

from btc_platform.demo import materialize_selection


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def run(platform_env, instance):
    """Materialize a selection of the real definitions with resources from the test environment."""
    from btc_platform.definitions import defs
    from btc_platform.defs.resources import build_resources

    resources = build_resources()

    def _run(selection, partition_key=None, **kwargs):
        return materialize_selection(defs, instance, resources, selection, partition_key, **kwargs)

    return _run
