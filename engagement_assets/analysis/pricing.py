"""What a run will cost before it spends, and what it did cost after (USD, standard paid tier).

Prices per million tokens from the Gemini API pricing page (re-check them: they change). A model missing
from the table is priced like the dearest listed one, so a budget cap errs on the safe side.
"""

from __future__ import annotations

from dataclasses import dataclass

AUDIO_TOKENS_PER_SECOND = 32
CHARS_PER_TEXT_TOKEN = 4
OUTPUT_TOKENS_PER_CLIP = 80


@dataclass(frozen=True)
class Price:
    text_input: float
    audio_input: float
    output: float


PRICES = {
    "gemini-2.5-flash-lite": Price(text_input=0.10, audio_input=0.30, output=0.40),
    "gemini-3.1-flash-lite": Price(text_input=0.25, audio_input=0.50, output=1.50),
    "gemini-3.5-flash-lite": Price(text_input=0.30, audio_input=0.30, output=2.50),
}
FALLBACK = Price(
    text_input=max(p.text_input for p in PRICES.values()),
    audio_input=max(p.audio_input for p in PRICES.values()),
    output=max(p.output for p in PRICES.values()),
)


def price_of(model: str) -> Price:
    return PRICES.get(model, FALLBACK)


def estimated_cost(model: str, seconds: float, prompt_chars: int) -> float:
    """Expected cost of one clip: its audio tokens, the prompt text, and a typical JSON answer."""
    price = price_of(model)
    audio = AUDIO_TOKENS_PER_SECOND * seconds * price.audio_input
    text = prompt_chars / CHARS_PER_TEXT_TOKEN * price.text_input
    return (audio + text + OUTPUT_TOKENS_PER_CLIP * price.output) / 1e6


def actual_cost(model: str, input_tokens: int, output_tokens: int) -> float:
    """Cost from the usage the API reported; input is priced as audio, which dominates it."""
    price = price_of(model)
    return (input_tokens * price.audio_input + output_tokens * price.output) / 1e6


def within_budget(costs: list[float], max_usd: float | None) -> int:
    """How many of `costs` (in sending order) fit under `max_usd` (all of them when there is no cap)."""
    if max_usd is None:
        return len(costs)
    spent = 0.0
    for count, cost in enumerate(costs):
        if spent + cost > max_usd:
            return count
        spent += cost
    return len(costs)
