"""``KEY=VALUE`` overrides of :class:`~tongcheng_qa.settings.Settings` (``eval --config``).

``KEY`` is a dotted path through the settings sections (``retrieval.mode``,
``answer.passages``, ``llm.base_url``); ``VALUE`` is validated by the same pydantic model
that reads the environment, so the constraints of settings.py apply. A value is tried as
the plain string first, then as JSON (``[...]``, ``{...}``); ``null`` / ``none`` mean None
where the setting allows it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..errors import ConfigError
from ..settings import Settings

M = TypeVar("M", bound=BaseModel)


def parse_override(text: str) -> tuple[str, str]:
    """``"retrieval.mode=dense"`` -> ``("retrieval.mode", "dense")``."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"Bad override {text!r}: write KEY=VALUE, e.g. retrieval.mode=dense or answer.passages=8.")
    return key, value.strip()


def _candidates(raw: str) -> list[Any]:
    if raw.lower() in ("null", "none"):
        return [None, raw]
    out: list[Any] = [raw]
    try:
        decoded = json.loads(raw)
    except json.JSONDecodeError:
        return out
    if decoded != raw:
        out.append(decoded)
    return out


def _field_names(model: BaseModel) -> str:
    return ", ".join(sorted(type(model).model_fields))


def _validated_field(model: BaseModel, name: str, raw: str, key: str) -> Any:
    data = model.model_dump()
    first: ValidationError | None = None
    for candidate in _candidates(raw):
        data[name] = candidate
        try:
            return getattr(type(model).model_validate(data), name)
        except ValidationError as exc:
            first = first or exc
    assert first is not None
    detail = "; ".join(e["msg"] for e in first.errors()[:3])
    raise ConfigError(f"Bad value for {key}: {raw!r} ({detail}).")


def _set(model: M, path: Sequence[str], raw: str, key: str, where: str) -> M:
    name = path[0]
    if name not in type(model).model_fields:
        raise ConfigError(f"Unknown setting {key!r}: {where} has no {name!r}. Valid keys there: {_field_names(model)}.")
    current = getattr(model, name)
    here = f"{where}.{name}" if where != "settings" else name
    if len(path) > 1:
        if not isinstance(current, BaseModel):
            raise ConfigError(f"Unknown setting {key!r}: {here} is a value, not a section.")
        return model.model_copy(update={name: _set(current, path[1:], raw, key, here)})
    if isinstance(current, BaseModel):
        raise ConfigError(f"{key!r} is a section; set one of its keys: {', '.join(f'{here}.{f}' for f in sorted(type(current).model_fields))}.")
    return model.model_copy(update={name: _validated_field(model, name, raw, key)})


def apply_overrides(settings: Settings, overrides: Sequence[str]) -> Settings:
    """A copy of ``settings`` with each ``KEY=VALUE`` applied; :class:`ConfigError` names a bad one."""
    for text in overrides:
        key, raw = parse_override(text)
        settings = _set(settings, key.split("."), raw, key, "settings")
    return settings
