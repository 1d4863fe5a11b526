"""Registers the `e2e` marker (the suite runs with --strict-markers): `pytest -m "not e2e"` skips the
end-to-end tests, which start a real Dagster deployment and take a few minutes."""


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: end-to-end test against a real `dagster dev` deployment")
