"""Telling `key=value` overrides apart from the other words of a command line."""

from __future__ import annotations


def is_override(word: str) -> bool:
    """`section.key=value`, as opposed to a file name, an official weights name or an option."""
    key = word.split("=", 1)[0]
    return "=" in word and key.replace(".", "").replace("_", "").isalnum()
