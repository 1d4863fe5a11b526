"""What learners are asked to read and what the speech recogniser heard, with ALL's accuracy formula."""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from functools import cache

NBSP = "\u00a0"

ENGLISH_PROMPTS = (
    "Apple",
    "Ball",
    "Rain",
    "School",
    "Elephant",
    "Sunflower",
    "The cat sat on the mat.",
    "It is raining outside",
    "I like to play with my friends.",
    "She is going to the school",
    "The sun is hot.",
    "My mother cooks food.",
    "The dog runs fast.",
    "We go to the park.",
    "Birds fly in the sky.",
    "I can read a book.",
    "The fish swims in the water.",
    "He has a red ball.",
    "Look at the big tree!",
    "Tom and Sam are friends.",
    "Where is my pen?",
    "The milk is in the cup.",
    "I eat rice and dal.",
    "The bus is late today.",
    "Please close the door.",
    "A frog can jump high.",
    "The moon is bright tonight.",
    "I wash my hands.",
    "The kite is flying high.",
    "My sister sings a song.",
    # Content copied from rich text keeps its non-breaking spaces.
    f"The cat sat on the{NBSP}mat.",
    f"I like to play with my{NBSP}friends.",
    f"Look at the{NBSP}big tree!",
)

INDIC_PROMPTS = {
    "ta": (
        "நான் பள்ளிக்கு செல்கிறேன்",
        "இது ஒரு பூனை",
        "அம்மா சமையல் செய்கிறார்",
        "மழை பெய்கிறது",
        "நான் புத்தகம் படிக்கிறேன்",
        "பறவை வானில் பறக்கிறது",
    ),
    "hi": (
        "मैं स्कूल जाता हूँ",
        "यह एक बिल्ली है",
        "बारिश हो रही है",
        "मेरा नाम राम है",
        "पेड़ पर चिड़िया बैठी है",
    ),
    "kn": (
        "ನಾನು ಶಾಲೆಗೆ ಹೋಗುತ್ತೇನೆ",
        "ಇದು ಒಂದು ಬೆಕ್ಕು",
        "ಮಳೆ ಬರುತ್ತಿದೆ",
        "ನನ್ನ ಹೆಸರು ರಾಮ",
        "ಹಕ್ಕಿ ಆಕಾಶದಲ್ಲಿ ಹಾರುತ್ತದೆ",
    ),
}

# Picture/word games of the R-flow (R1–R4) show single words.
RFLOW_WORDS = ("Apple", "Ball", "Cat", "Dog", "Egg", "Fish", "Hat", "Pen", "Sun", "Tree")

# Common ASR confusions for children's English; indices pick a word to swap.
_SOUND_ALIKE = {
    "the": "a",
    "a": "the",
    "is": "was",
    "cat": "cap",
    "sat": "sad",
    "mat": "man",
    "play": "pay",
    "friends": "friend",
    "going": "go",
    "school": "cool",
    "hot": "hat",
    "runs": "run",
    "fly": "flies",
    "read": "red",
    "swims": "swim",
    "big": "pig",
    "pen": "pan",
    "rice": "nice",
    "late": "let",
    "jump": "jam",
    "bright": "bite",
    "hands": "hand",
    "sings": "sing",
}


@dataclass(frozen=True)
class Recognition:
    """One ASR outcome for a prompt, scored the way learner-ai-app scores it."""

    response_text: str
    accuracy: float
    correct_words: tuple[str, ...]
    incorrect_words: tuple[str, ...]
    word_results: tuple[str, ...]


def normalise(text: str) -> str:
    """The app compares against lower-case text without punctuation or NBSP."""
    # Only punctuation goes: Indic vowel signs are combining marks and must stay.
    kept = "".join(char for char in text.replace(NBSP, " ") if not unicodedata.category(char).startswith("P"))
    return " ".join(kept.lower().split())


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def accuracy_percentage(response: str, original: str) -> float:
    """max(0, 100 − CER×100) as in VoiceAnalyser.js."""
    expected = normalise(original)
    if not expected:
        return 0.0
    cer = levenshtein(normalise(response), expected) / len(expected)
    return max(0.0, 100.0 - cer * 100.0)


def recognise(original: str, response: str) -> Recognition:
    expected_words = normalise(original).split()
    heard_words = normalise(response).split()
    correct = tuple(word for word in heard_words if word in expected_words)
    incorrect = tuple(word for word in heard_words if word not in expected_words)
    results = _word_results(expected_words, heard_words)
    return Recognition(response, accuracy_percentage(response, original), correct, incorrect, results)


def _word_results(expected: list[str], heard: list[str]) -> tuple[str, ...]:
    """Position-wise "1" match, "0" missing, "-1" extra (constants.js compareArrays)."""
    results = ["1" if i < len(heard) and heard[i] == word else "0" for i, word in enumerate(expected)]
    results.extend("-1" for _ in range(len(heard) - len(expected)))
    return tuple(results)


@cache
def recognitions(original: str) -> tuple[Recognition, ...]:
    """A handful of plausible transcripts per prompt, scored once: scoring per response would dominate run time."""
    words = normalise(original).split()
    candidates = [" ".join(words)]
    if len(words) > 1:
        candidates.append(" ".join(words[:-1]))
        candidates.append(" ".join(words[1:]))
        candidates.append(" ".join(words[: len(words) // 2]))
    swapped = [_SOUND_ALIKE.get(word, word) for word in words]
    if swapped != words:
        candidates.append(" ".join(swapped))
    candidates.append(" ".join([*words, words[-1]]))
    if words and len(words[0]) > 2:
        candidates.append(" ".join([words[0][:-1], *words[1:]]))
    # The ASR keeps the learner's capitalisation now and then.
    candidates.append(original.replace(NBSP, " ").rstrip(".!?").capitalize())
    unique = list(dict.fromkeys(candidates))
    return tuple(recognise(original, text) for text in unique)


def pick_recognition(rng: random.Random, original: str) -> Recognition:
    options = recognitions(original)
    # Children read the prompt right more often than not.
    return options[0] if rng.random() < 0.3 else rng.choice(options)


def silence(original: str) -> Recognition:
    """The learner said nothing: empty transcript, accuracy 0."""
    return Recognition("", 0.0, (), (), tuple("0" for _ in normalise(original).split()))
