"""Generated conversations between learners and the tutor bot, shaped like the NocoDB tables: several
days, several learners, every topic and mood the categorizer knows, translated Hindi and Kannada messages,
an open conversation, one crossing midnight, and a few damaged rows. Deterministic by seed."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

LEARNER_LINES = {
    "pronunciation": ["How do I pronounce 'world'?", "I can't say this sound", "Is my accent good?"],
    "vocabulary": ["What does 'brave' mean?", "Please give me words for food", "How do you spell 'friend'?"],
    "grammar": ["What is the past tense of go?", "Is this sentence correct?", "Why is it 'an apple'?"],
    "lesson_progress": ["I finished the lesson!", "What is my score?", "Show me the next level please"],
    "technical": ["The app crashed again", "My microphone is not working", "Audio is stuck loading"],
    "account": ["I need to change my email", "How do I pay for the subscription?", "My profile is wrong"],
}
MOODS = {
    "positive": "Thanks, this is great and fun!",
    "negative": "This is boring and too hard.",
    "neutral": "Ok.",
}
TRANSLATIONS = {
    "hi": ("मुझे यह शब्द समझ नहीं आया", "I did not understand this word"),
    "kn": ("ಈ ಪಾಠ ಕಷ್ಟವಾಗಿದೆ", "This lesson is difficult"),
}
TIME_FORMAT = "%Y-%m-%d %H:%M:%S+00:00"  # NocoDB's DateTime strings
MODELS = ("tutor-gemini-flash", "tutor-rules-v2")


def generate(
    conversations: int = 60, learners: int = 12, days: int = 7, seed: int = 7, start: str = "2024-03-04"
):
    """(conversation rows, message rows), ready for NocoDB."""
    rng = random.Random(seed)
    first_day = datetime.fromisoformat(start)
    conversation_rows, message_rows = [], []
    for number in range(conversations):
        conversation_id = f"c-{number:05d}"
        user_id = f"learner-{rng.randrange(learners):03d}"
        language = rng.choice(["en", "en", "en", "hi", "kn"])
        started = first_day + timedelta(days=rng.randrange(days), seconds=rng.randrange(8 * 3600, 22 * 3600))
        if number == 1:  # past midnight: its messages stay with the day it started
            started = started.replace(hour=23, minute=58)
        messages = _messages(rng, conversation_id, user_id, language, started, len(message_rows))
        message_rows.extend(messages)
        open_conversation = number == 2
        conversation_rows.append(
            {
                "conversation_id": conversation_id,
                "user_id": user_id,
                "channel": rng.choice(["app", "whatsapp"]),
                "language": language,
                "started_at": started.strftime(TIME_FORMAT),
                "ended_at": None if open_conversation else messages[-1]["sent_at"],
                "status": "open" if open_conversation else "closed",
            }
        )
    conversation_rows.append(
        {"conversation_id": None, "user_id": "learner-000", "started_at": "2024-03-05 10:00:00+00:00"}
    )
    conversation_rows.append(
        {"conversation_id": "c-bad-time", "user_id": "learner-001", "started_at": "yesterday"}
    )
    return conversation_rows, message_rows


def _messages(rng, conversation_id, user_id, language, started, numbered_from):
    topic = rng.choice(sorted(LEARNER_LINES))
    lines = [rng.choice(LEARNER_LINES[topic]) for _ in range(rng.randint(1, 4))]
    lines.append(MOODS[rng.choice(sorted(MOODS))])
    rows, sent = [], started
    for line in lines:
        original, translation = (line, None)
        if language != "en" and rng.random() < 0.5:
            original, translation = TRANSLATIONS[language]
        rows.append(
            _message(
                numbered_from + len(rows),
                conversation_id,
                user_id,
                "user",
                original,
                language,
                translation,
                sent,
            )
        )
        sent += timedelta(seconds=rng.randint(2, 40))
        reply = f"Here is some help with {topic.replace('_', ' ')}."
        number = numbered_from + len(rows)
        rows.append(
            _message(number, conversation_id, user_id, "assistant", reply, "en", None, sent)
            | _reply_facts(conversation_id, number)
        )
        sent += timedelta(seconds=rng.randint(10, 300))
    return rows


def _reply_facts(conversation_id: str, number: int) -> dict:
    """Which model answered (by conversation, so each conversation has one) and, for every third reply, the
    learner's rating: derived from the numbers, so the seeded draws of every other field stay as they were."""
    model = MODELS[sum(map(ord, conversation_id)) % len(MODELS)]
    return {"model": model, "rating": str(1 + number % 5) if number % 3 == 0 else None}


def _message(number, conversation_id, user_id, role, text, language, translation, sent):
    return {
        "message_id": f"m-{number:06d}",
        "conversation_id": conversation_id,
        "user_id": user_id,
        "role": role,
        "text": text,
        "language": language,
        "translated_text": translation,
        "sent_at": sent.strftime(TIME_FORMAT),
    }
