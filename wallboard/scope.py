"""``Scope``: cities and/or stores (both empty: the whole chain), and the one place a
scope is matched.

An event, a panel, a change, a rule's ``match`` all name a scope the same way; a store
belongs to it when the store itself or its city is listed (:meth:`Scope.contains`).
Everything that asks "is this store (incident, change, voice item) in scope?" asks
``contains`` (or :meth:`Scope.reaches`, built on it). Pure (stdlib only: the layout and
the state layers both use it, neither pulls the other in); membership is a set lookup.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Iterable, Mapping


@dataclass(frozen=True)
class Scope:
    """Cities and/or stores an event, panel or change covers; both empty: chain-wide."""

    cities: tuple[str, ...] = ()
    stores: tuple[str, ...] = ()

    @cached_property
    def _city_set(self) -> frozenset:
        return frozenset(self.cities)

    @cached_property
    def _store_set(self) -> frozenset:
        return frozenset(self.stores)

    @classmethod
    def of(cls, raw: Mapping[str, Any] | "Scope" | None) -> "Scope":
        """The scope of a ``{"cities": [...], "stores": [...]}`` table (a change's, a
        panel context's; None or missing lists: chain-wide)."""
        if isinstance(raw, Scope):
            return raw
        if not raw:
            return CHAIN
        return cls(tuple(raw.get("cities") or ()), tuple(raw.get("stores") or ()))

    @property
    def chain_wide(self) -> bool:
        return not self.cities and not self.stores

    def contains(self, store_id: str | None, city_id: str | None) -> bool:
        """Whether a store (of city ``city_id``, None when unknown) belongs to the scope:
        the whole chain, the store listed, or its city listed."""
        if not self._city_set and not self._store_set:
            return True
        return store_id in self._store_set or (city_id is not None and city_id in self._city_set)

    def contains_any(self, store_ids: Iterable[str], city_of: Callable[[str], str | None]) -> bool:
        """Whether one of the stores belongs to the scope (``city_of``: a store's city)."""
        return any(self.contains(s, city_of(s)) for s in store_ids)

    def reaches(self, other: "Scope", city_of: Callable[[str], str | None]) -> bool:
        """Whether two scopes share a store: either is chain-wide, a store of ``other``
        is in this scope, or they name a city in common."""
        if self.chain_wide or other.chain_wide:
            return True
        return self.contains_any(other.stores, city_of) or not self._city_set.isdisjoint(other.cities)


#: The whole chain.
CHAIN = Scope()

__all__ = ["Scope", "CHAIN"]
