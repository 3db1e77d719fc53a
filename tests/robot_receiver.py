"""A local stand-in for DingTalk / WeCom group robots and a JSON webhook (tests, drills).

It checks what the real DingTalk robot checks for a robot with a signing secret: the
``access_token``, a ``timestamp`` (ms) within an hour of now and ``sign`` =
base64(HMAC-SHA256(key=secret, "<timestamp>\\n<secret>")), computed here on its own
(not with wallboard's code), and answers as DingTalk does (``errcode`` 310000 "sign not
match" on a bad signature). Every request is kept in ``.received``.

As a script, for trying a hub by hand::

    python3 tests/robot_receiver.py --secret SEC... --port 0
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "robot-access-token-0123"


def expected_sign(secret: str, timestamp: str) -> str:
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}\n{secret}".encode("utf-8"), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


@dataclass
class Received:
    path: str
    query: dict[str, str]
    body: Any
    signed: bool | None   # DingTalk: signature checked and right (None: not a signed robot)


@dataclass
class RobotReceiver:
    secret: str = ""
    fail_first: int = 0          # answer this many requests with HTTP 500 first
    received: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    port: int = 0

    async def start(self) -> "RobotReceiver":
        app = web.Application()
        app.add_routes([web.post("/robot/send", self._dingtalk), web.post("/cgi-bin/webhook/send", self._wecom),
                        web.post("/hook", self._hook)])
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        await self._runner.cleanup()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _flaky(self) -> web.Response | None:
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=500, text="busy")
        return None

    async def _dingtalk(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        body = await request.json()
        if request.query.get("access_token") != TOKEN:
            self.refused.append("token")
            return web.json_response({"errcode": 300001, "errmsg": "token is not exist"})
        signed = None
        if self.secret:
            ts, sign = q.get("timestamp", ""), q.get("sign", "")
            # the query is URL-decoded here: a sign sent without URL-encoding ('+' read as ' ') fails
            ok = ts.isdigit() and abs(time.time() * 1000 - int(ts)) < 3600_000 and \
                hmac.compare_digest(sign, expected_sign(self.secret, ts))
            if not ok:
                self.refused.append("sign")
                return web.json_response({"errcode": 310000, "errmsg": "sign not match, more: [...]"})
            signed = True
        if (r := self._flaky()) is not None:
            return r
        self.received.append(Received("dingtalk", q, body, signed))
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _wecom(self, request: web.Request) -> web.Response:
        if (r := self._flaky()) is not None:
            return r
        self.received.append(Received("wecom", dict(request.query), await request.json(), None))
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _hook(self, request: web.Request) -> web.Response:
        if (r := self._flaky()) is not None:
            return r
        self.received.append(Received("hook", dict(request.query), await request.json(), None))
        return web.Response(text="ok")


def main() -> None:  # pragma: no cover - by hand
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--secret", default="")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()

    async def run() -> None:
        r = await RobotReceiver(secret=args.secret, port=args.port).start()
        print(f"DingTalk-shaped robot: {r.base}/robot/send?access_token={TOKEN}", flush=True)
        seen = 0
        while True:
            await asyncio.sleep(0.2)
            for x in r.received[seen:]:
                print(json.dumps({"robot": x.path, "signed": x.signed, "body": x.body}, ensure_ascii=False), flush=True)
            seen = len(r.received)
            for why in r.refused:
                print(json.dumps({"refused": why}), flush=True)
            r.refused.clear()

    asyncio.run(run())


if __name__ == "__main__":  # pragma: no cover
    main()
