"""Names in the wall's language: the one rule every widget follows for stores and cities.

The feed gives a store ``name`` (the chain's own, usually Chinese) and often ``name_en``;
a city object ``{"id", "name", "name_en"?}``. An English wall shows ``name_en`` where the
feed has one, a Chinese wall ``name``; either falls back to the other, then to the id.
"""
from __future__ import annotations

from typing import Any


def display_name(record: dict[str, Any] | None, lang: str, fallback: str = "") -> str:
    """``record``'s name for ``lang`` (``name_en`` on an English wall when present)."""
    rec = record or {}
    en, zh = rec.get("name_en"), rec.get("name")
    first, second = (zh, en) if lang == "zh" else (en, zh)
    return str(first or second or fallback)


def store_name(stores: dict[str, dict[str, Any]], store_id: str, lang: str) -> str:
    """The name of store ``store_id`` (its id when unknown or unnamed)."""
    return display_name(stores.get(store_id), lang, store_id)


def city_name(store: dict[str, Any] | None, lang: str) -> str:
    """The name of a store's city (its id when unnamed, "" when none)."""
    city = (store or {}).get("city") or {}
    return display_name(city, lang, city.get("id", ""))


__all__ = ["display_name", "store_name", "city_name"]
