"""The background task a Prometheus source and a notification sink share: one asyncio
task on the hub's loop talking HTTP through one aiohttp session."""
from __future__ import annotations

import asyncio
from typing import Any, Coroutine


class HttpTask:
    """``_start(coro, name)`` on the hub's loop; ``await stop()`` cancels the task and
    closes the session the task opened with :meth:`_open_session`."""

    _task: "asyncio.Task[None] | None" = None
    _session: Any = None

    def _start(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._task = asyncio.get_running_loop().create_task(coro, name=name)

    def _open_session(self, timeout_s: float) -> Any:
        import aiohttp   # only a hub given --sources loads it

        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s))
        return self._session

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except BaseException:  # noqa: BLE001 - cancelled, or the run's own error (logged)
                pass
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None


__all__ = ["HttpTask"]
