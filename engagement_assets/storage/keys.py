"""Learner ids and drop names as partition keys and path segments, and object keys as relative paths.

Every learner id and every drop name becomes a partition key that is safe as one path segment and as a
Dagster partition key, and the id can always be read back from its key:

- text that is already safe is its own key (`4829163057`, `all_telemetry_part1.json`), so ordinary keys and
  paths never change;
- anything else (a `/` or `\\`, a leading `.`, a control or invisible character, Dagster's reserved `...`,
  a `,` (the UI's list separator), or a leading `~`, the marker itself) becomes `~` followed by its UTF-8 bytes, with every byte outside
  `[A-Za-z0-9_-]` written as `%XX`: `1234567/7654321` -> `~1234567%2F7654321`.

Keys starting with `~` are exactly the encoded ones, so the encoding is injective and `text_of_key` inverts
it. A key too long for a file name is stored under a digest of itself (`storage_segment`): the key, and so
the id, stay whole; only the file name is shortened.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

MARKER = "~"
# The longest path segment written as is, in UTF-8 bytes: a file system allows 255, and the I/O manager
# adds `.parquet` and a temporary name around it while writing.
MAX_SEGMENT_BYTES = 200
_DIGEST_PREFIX = MARKER * 2  # never the start of a key: a leading `~` in text is itself encoded
_INVISIBLE = ("Cc", "Cf", "Zl", "Zp")
_KEPT = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_ENCODED_BODY = re.compile(r"(?:[A-Za-z0-9_-]|%[0-9A-F]{2})*")


class UnsafePartitionKey(ValueError):
    pass


def key_of(text: str) -> str:
    """The partition key of a learner id or drop name: the text itself when it is safe, else encoded."""
    if _text_problem(text) is None:
        return text
    body = "".join(chr(byte) if byte in _KEPT else f"%{byte:02X}" for byte in text.encode("utf-8"))
    return MARKER + body


def text_of_key(key: str) -> str:
    """The learner id or drop name a key was made from; ValueError for a string no text encodes to."""
    if not key.startswith(MARKER):
        if _text_problem(key) is not None:
            raise ValueError(f"{key!r} is not a partition key: the key of this text is {key_of(key)!r}")
        return key
    body = key[len(MARKER) :]
    if not _ENCODED_BODY.fullmatch(body):
        raise ValueError(f"{key!r} is not a partition key: an encoded key holds only [A-Za-z0-9_-] and %XX")
    try:
        text = _unescape(body).decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{key!r} is not a partition key: its bytes are not UTF-8") from None
    if key_of(text) != key:
        raise ValueError(f"{key!r} is not a partition key: the key of {text!r} is {key_of(text)!r}")
    return text


def check_partition_key(key: str, kind: str = "partition") -> str:
    """`key` if some text encodes to it, else UnsafePartitionKey saying which key to use instead."""
    try:
        text_of_key(key)
    except (ValueError, TypeError) as err:
        raise UnsafePartitionKey(f"{kind} key {key!r} cannot be stored: {err}") from None
    return key


def storage_segment(key: str) -> str:
    """The path segment a partition key is stored under: the key, or a digest of it when it is too long."""
    check_partition_key(key)
    if len(key.encode("utf-8")) <= MAX_SEGMENT_BYTES:
        return key
    return _DIGEST_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()


def is_digest(segment: str) -> bool:
    """Whether a storage segment is the digest of a long key rather than the key itself."""
    return segment.startswith(_DIGEST_PREFIX)


def object_key_problem(key) -> str | None:
    """Why an object key (segments joined by '/') would escape the folder it is copied under, or None."""
    if not isinstance(key, str) or not key:
        return "it is empty"
    if key.startswith("/"):
        return "it is an absolute path"
    for segment in key.split("/"):
        problem = _segment_problem(segment) or _length_problem(segment)
        if problem:
            return f"segment {segment!r}: {problem}"
    return None


def _text_problem(text) -> str | None:
    """Why `text` cannot be its own partition key, or None."""
    if not isinstance(text, str):
        raise TypeError(f"a partition key is made from a string, not {type(text).__name__}")
    if text.startswith(MARKER):
        return "it starts with the marker of encoded keys"
    if "..." in text or "," in text:
        return "the UI reads '...' as a range of partitions and ',' as a list of them"
    return _segment_problem(text)


def _segment_problem(segment: str) -> str | None:
    if not segment:
        return "it is empty"
    if "/" in segment or "\\" in segment:
        return "it contains a path separator"
    if segment.startswith("."):
        return "it starts with '.' ('..' climbs out of the folder; dot-names are reserved for temp files)"
    # ASCII text (every real id) is checked at C speed; only other text needs a look at each character.
    invisible = (
        not segment.isprintable()
        if segment.isascii()
        else any(unicodedata.category(char) in _INVISIBLE for char in segment)
    )
    if invisible:
        return "it contains a control or invisible formatting character"
    return None


def _length_problem(segment: str) -> str | None:
    if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
        return f"it is longer than {MAX_SEGMENT_BYTES} bytes"
    return None


def _unescape(body: str) -> bytes:
    out = bytearray()
    index = 0
    while index < len(body):
        if body[index] == "%":
            out.append(int(body[index + 1 : index + 3], 16))
            index += 3
        else:
            out.append(ord(body[index]))
            index += 1
    return bytes(out)
