"""Engagement platform: a Dagster code location for Sunbird ALL learner telemetry (`engagement_assets.definitions`).

The two functions here are how a learner id and its `users` partition key relate, for anyone who selects
learners in the UI, names a lesson-tracking export, or reads the Parquet layout by hand.
"""

from engagement_assets.storage.keys import key_of, text_of_key


def learner_key(user_id: str) -> str:
    """The `users` partition key of a learner id: the id itself when it is safe as a file name (every
    numeric virtual id is), else `~` and the id with unsafe bytes written as `%XX`
    (`1234567/7654321` -> `~1234567%2F7654321`)."""
    return key_of(user_id)


def learner_id(key: str) -> str:
    """The learner id a `users` partition key stands for (the inverse of `learner_key`)."""
    return text_of_key(key)


__all__ = ["learner_id", "learner_key"]
