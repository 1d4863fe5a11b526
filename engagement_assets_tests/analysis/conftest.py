import pytest


@pytest.fixture(autouse=True)
def _gemini_env_of_the_tests(clean_gemini_env):
    """Every analysis test talks to a local fake, never to whatever the machine is configured for."""
