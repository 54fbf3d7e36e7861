"""Server-Sent Events framing."""

from __future__ import annotations

import json
from typing import Any


def sse(event: str | None, data: Any) -> str:
    """One event: ``event:`` line (if named), a JSON ``data:`` line, a blank line."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return head + "".join(f"data: {line}\n" for line in payload.split("\n")) + "\n"


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
