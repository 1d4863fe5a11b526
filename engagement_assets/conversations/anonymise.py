"""Optional anonymisation, applied to NocoDB rows before anything is stored: learner ids become a keyed
hash (HMAC-SHA256 with a configured secret: the same id gives the same hash in every run, so joins and
per-learner analytics still work, and without the key it cannot be reversed or recomputed), and e-mail
addresses, phone numbers and any configured pattern are scrubbed from message text. Counts by kind say
how many values were replaced."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter
from dataclasses import dataclass, field

from engagement_assets.conversations.records import Parsed

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Ten or more digits, optionally with a leading + and the usual separators: what phone numbers look like in
# chat (a learner's 10-digit virtual id typed into a message is scrubbed too, which is as it should be).
PHONE = re.compile(r"(?<![\w+])\+?\d(?:[\s().-]*\d){9,}(?!\w)")
ID_FIELDS = ("user_id",)
TEXT_FIELDS = ("text", "translated_text")
HASH_PREFIX = "anon-"
HASH_HEX = 24


@dataclass
class Anonymiser:
    secret: bytes
    patterns: tuple[re.Pattern, ...] = ()
    counts: Counter = field(default_factory=Counter)

    def pseudonym(self, user_id: str) -> str:
        digest = hmac.new(self.secret, user_id.encode(), hashlib.sha256).hexdigest()
        return HASH_PREFIX + digest[:HASH_HEX]

    def scrub(self, text: str) -> str:
        # The configured patterns first: they are the most specific (an id that also looks like a phone number).
        for kind, pattern in (*(("pattern", p) for p in self.patterns), ("email", EMAIL), ("phone", PHONE)):
            text, replaced = pattern.subn(f"[{kind} removed]", text)
            self.counts[kind] += replaced
        return text

    def apply(self, parsed: Parsed) -> Parsed:
        """The parsed batch with ids hashed and text scrubbed, its rejected rows included."""
        rows = parsed.rows.copy()
        for column in ID_FIELDS:
            if column in rows:
                rows[column] = rows[column].map(self._hashed, na_action="ignore")
        for column in TEXT_FIELDS:
            if column in rows:
                rows[column] = rows[column].map(self.scrub, na_action="ignore")
        rejected = parsed.rejected.copy()
        if len(rejected):
            rejected["row"] = rejected["row"].map(self._scrubbed_row)
        return Parsed(rows=rows, rejected=rejected, reasons=parsed.reasons)

    def _hashed(self, user_id: str) -> str:
        self.counts["user_id"] += 1
        return self.pseudonym(user_id)

    def _scrubbed_row(self, quoted: str) -> str:
        """A rejected row is kept as text for a person to find it in NocoDB; anonymised, only its shape."""
        self.counts["rejected_row"] += 1
        return f"[row withheld: anonymisation is on; {len(quoted):,} characters]"


def anonymiser(enabled: bool, secret: str | None, patterns: str | None) -> Anonymiser | None:
    """The configured anonymiser, or None when anonymisation is off."""
    if not enabled:
        return None
    if not secret:
        raise ValueError("ANONYMIZE=true needs ANONYMIZE_SECRET (the key of the learner id hash)")
    compiled = tuple(re.compile(text) for text in (patterns or "").split(";;") if text.strip())
    return Anonymiser(secret.encode(), compiled)
