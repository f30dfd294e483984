"""Run ids and readable default names."""

from __future__ import annotations

import re
import secrets

_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ADJECTIVES = [
    "amber",
    "brisk",
    "calm",
    "daring",
    "eager",
    "fancy",
    "gentle",
    "hardy",
    "icy",
    "jolly",
    "keen",
    "lively",
    "misty",
    "noble",
    "olive",
    "proud",
    "quiet",
    "rapid",
    "sunny",
    "tidy",
    "upbeat",
    "vivid",
    "warm",
    "young",
    "zesty",
    "bold",
    "crisp",
    "dusty",
]
_NOUNS = [
    "acorn",
    "brook",
    "cedar",
    "dune",
    "ember",
    "fern",
    "glade",
    "harbor",
    "island",
    "juniper",
    "kestrel",
    "lagoon",
    "meadow",
    "nebula",
    "orchard",
    "pine",
    "quarry",
    "river",
    "summit",
    "thicket",
    "umber",
    "valley",
    "willow",
    "yarrow",
    "zephyr",
]


def new_run_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(8))


def new_run_name(counter: int | None = None) -> str:
    number = counter if counter is not None else secrets.randbelow(1000)
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{number}"


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not _ID_RE.match(run_id):
        raise ValueError(
            f"runyard.init: run id {run_id!r} is not valid: use 1-64 letters, digits, '_', '-' "
            f"or '.', starting with a letter or digit"
        )
    return run_id


def check_name(kind: str, value: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 128 or "/" in value:
        raise ValueError(
            f"runyard.init: {kind} {value!r} is not valid: use 1-128 characters without '/'"
        )
    return value
