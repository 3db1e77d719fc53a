"""Incident notifications to DingTalk / WeCom group robots and JSON webhooks.

Configured by the ``[[sink]]`` tables of ``wallboard hub --sources FILE``
(:mod:`wallboard.hub.sources.config`); run by :class:`Notifier` (queues, rate limit,
retries: :mod:`.notifier`); wire formats and DingTalk's signature in :mod:`.robots`;
the English / Chinese text in :mod:`.messages`.
"""
from __future__ import annotations

from .messages import Notification, render
from .notifier import Notifier, SinkHealth, SinkWorker
from .robots import dingtalk_sign, signed_url

__all__ = ["Notification", "Notifier", "SinkHealth", "SinkWorker", "dingtalk_sign", "render", "signed_url"]
