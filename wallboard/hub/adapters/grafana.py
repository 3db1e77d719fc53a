"""``POST /grafana``: a Grafana Alerting contact point of type Webhook (Grafana 9 and later).

Its "Test" button's alert is ignored unless ``[grafana] test_notifications = "open"``; a
legacy (Grafana 8) body is refused as unsupported (:mod:`wallboard.hub.alert_mapping`)."""
from __future__ import annotations

from wallboard.hub.alert_mapping import map_webhook

from . import Adapter

ADAPTER = Adapter("grafana", "Grafana Alerting",
                  lambda payload, rules, incidents: map_webhook(payload, rules, source="grafana", incidents=incidents),
                  ("grafana-webhook-example.json", "grafana-test-notification.json"))
