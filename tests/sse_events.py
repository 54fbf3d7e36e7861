"""Test helper (not a test file): parse a Server-Sent Events body into (event name, data) pairs."""

from __future__ import annotations

import json
from typing import Any


def parse_sse(text: str) -> list[tuple[str, Any]]:
    """Each event's name ("message" when unnamed) and its JSON data ("[DONE]" stays a string)."""
    events = []
    for block in text.strip().split("\n\n"):
        lines = block.split("\n")
        name = next((ln[7:] for ln in lines if ln.startswith("event: ")), "message")
        data = "\n".join(ln[6:] for ln in lines if ln.startswith("data: "))
        events.append((name, json.loads(data) if data != "[DONE]" else data))
    return events
