"""Chat robots' wire formats (pure): the URL and JSON body to post, and what the answer means.

* DingTalk group robot ("custom robot"): ``POST url`` with
  ``{"msgtype": "markdown", "markdown": {"title", "text"}}``; with a signing secret
  ("加签") the URL gets ``&timestamp=<ms>&sign=<urlencoded base64 HMAC-SHA256 of
  "<ms>\\n<secret>" keyed by the secret>`` (:func:`dingtalk_sign`). It answers 200 with
  ``{"errcode": 0, "errmsg": "ok"}``; errcode 130101 is "sending too fast".
* WeCom (企业微信) group robot: ``POST url`` with ``{"msgtype": "markdown",
  "markdown": {"content"}}``; answers ``{"errcode": 0}``, 45009 when over its limit.
* Generic webhook (Slack incoming webhooks and anything that takes JSON):
  ``{"text": ..., "title", "kind", "incident"}``; any 2xx is delivered.

:func:`request` builds ``(url, body)``; :func:`verdict` reads the answer:
``"ok"``, ``"retry"`` (network trouble, 5xx, 429, a robot's rate limit) or ``"fail"``
(anything a resend would not fix: a bad token, a bad signature).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any
from urllib.parse import quote_plus

import orjson

#: Robot errcodes that mean "later": DingTalk 130101 (too fast), WeCom 45009 (over the limit), -1 (busy).
RETRY_ERRCODES = {130101, 45009, -1}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's ``sign`` value (already URL-encoded) for ``timestamp_ms``."""
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), to_sign, hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def signed_url(url: str, secret: str, timestamp_ms: int | None = None) -> str:
    """``url`` with DingTalk's ``timestamp`` and ``sign`` query parameters."""
    ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}timestamp={ts}&sign={dingtalk_sign(secret, ts)}"


def request(kind: str, url: str, title: str, text: str, *, secret: str | None = None,
            extra: dict[str, Any] | None = None) -> tuple[str, bytes]:
    """The URL and JSON body of one message for a sink of ``kind``."""
    if kind == "dingtalk":
        body: dict[str, Any] = {"msgtype": "markdown", "markdown": {"title": title, "text": text.replace("\n", "  \n")}}
        return (signed_url(url, secret) if secret else url), orjson.dumps(body)
    if kind == "wecom":
        return url, orjson.dumps({"msgtype": "markdown", "markdown": {"content": text}})
    if kind == "webhook":
        return url, orjson.dumps({"text": text, "title": title, **(extra or {})})
    raise ValueError(f"sink kind {kind!r}: expected dingtalk, wecom or webhook")


def verdict(kind: str, status: int, body: bytes) -> tuple[str, str]:
    """``("ok" | "retry" | "fail", why)`` for an HTTP answer of a sink of ``kind``."""
    if status == 429 or status >= 500:
        return "retry", f"HTTP {status}"
    if not 200 <= status < 300:
        return "fail", f"HTTP {status}: {body[:120].decode('utf-8', 'replace')}"
    if kind == "webhook":
        return "ok", ""
    try:
        doc = orjson.loads(body)
        code = int(doc.get("errcode", 0))
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return "fail", f"HTTP {status} but not a {kind} robot answer: {body[:80]!r}"
    if code == 0:
        return "ok", ""
    why = f"errcode {code}: {str(doc.get('errmsg', ''))[:160]}"
    return ("retry" if code in RETRY_ERRCODES else "fail"), why


__all__ = ["dingtalk_sign", "signed_url", "request", "verdict", "RETRY_ERRCODES"]
