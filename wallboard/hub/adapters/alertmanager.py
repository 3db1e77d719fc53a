"""``POST /alertmanager``: Prometheus Alertmanager's webhook (payload version 4)."""
from __future__ import annotations

from wallboard.hub.alert_mapping import map_webhook

from . import Adapter

ADAPTER = Adapter("alertmanager", "Prometheus Alertmanager",
                  lambda payload, rules, incidents: map_webhook(payload, rules, source="alertmanager",
                                                                incidents=incidents),
                  ("alertmanager-0.25-webhooks.jsonl",))
