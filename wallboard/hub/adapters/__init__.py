"""Alert webhook adapters: one module per source, each a route ``POST /<name>`` on the HTTP ingest.

An adapter turns the body its monitoring system posts into wallboard events, through
the shared mapping of :mod:`wallboard.hub.alert_mapping` (incident per alert, device
status from severity, ``--mapping`` rules)::

    from wallboard.hub.adapters import ADAPTERS
    mapped = ADAPTERS["zabbix"].map(payload, rules, incidents)   # -> alert_mapping.Mapped

A new source is one module here that defines ``ADAPTER = Adapter(...)`` (listed in
:data:`MODULES`) plus its recorded request under ``tests/fixtures/`` (named in
``Adapter.fixture``; ``tests/test_adapters.py`` posts every fixture to its route).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from wallboard.hub.alert_mapping import Mapped, MappingRules

#: The adapter modules, in the order their routes are listed.
MODULES = ("alertmanager", "grafana", "zabbix")


@dataclass(frozen=True)
class Adapter:
    name: str          # the route (POST /name) and the x_source of what it opens
    title: str         # for messages: "Prometheus Alertmanager"
    map: Callable[[Any, MappingRules, Mapping[str, Mapping[str, Any]]], Mapped]
    fixtures: tuple[str, ...]  # recorded bodies, relative to tests/fixtures/


def _load() -> dict[str, Adapter]:
    out: dict[str, Adapter] = {}
    for mod in MODULES:
        adapter = importlib.import_module(f"{__name__}.{mod}").ADAPTER
        out[adapter.name] = adapter
    return out


ADAPTERS: dict[str, Adapter] = _load()

__all__ = ["ADAPTERS", "Adapter", "MODULES"]
