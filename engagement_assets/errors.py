"""Errors as one short line for a status row: the type, the message, and a bound on the length."""

MAX_ERROR_LENGTH = 500


def describe(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}"
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"
