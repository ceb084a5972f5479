"""What the sidecar sends the worker on its own: each message from Node, handled.

Answers to the worker's calls (`result`, `pong`, `ready`) complete the waiting call; a `fetch`
is sent by Python (proxy.py) and answered; `fetch_cancel` stops one (its execute was cut);
`token_refresh` is kept with its execute and handed to whoever persists OAuth tokens. A message
that breaks the protocol raises ValueError: the caller restarts the sidecar.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sluice.bridge.proxy import answer_fetch
from sluice.bridge.results import TokenRefresh
from sluice.bridge.sidecar_process import Call, Process, TokenHandler

log = logging.getLogger("sluice.bridge")

Reply = Callable[[Process, Mapping[str, Any]], Awaitable[None]]


def dispatch(process: Process, message: dict[str, Any], reply: Reply) -> None:
    """Handle one message from `process`; `reply` writes a message back to it."""
    op = message["op"]
    if op == "fetch":
        call = process.calls.get(str(message["exec"]))
        task = asyncio.get_running_loop().create_task(_answer_fetch(process, call, message, reply))
        if call is not None:
            call.tasks[str(message["id"])] = task
    elif op in ("result", "pong"):
        call = process.calls.get(str(message["id"]))
        if call is not None and not call.future.done():
            call.future.set_result(message)
    elif op == "fetch_cancel":
        for waiting in process.calls.values():
            cancelled = waiting.tasks.get(str(message["id"]))
            if cancelled is not None:
                cancelled.cancel()
    elif op == "token_refresh":
        _token_refresh(process, message)
    elif op == "ready":
        if not process.ready.done():
            process.ready.set_result(message)
    elif op == "error":
        raise ValueError(f"the sidecar refused a message: {message.get('message')}")
    else:
        raise ValueError(f"unknown op {op!r}")


def _token_refresh(process: Process, message: dict[str, Any]) -> None:
    call = process.calls.get(str(message["exec"]))
    if call is None:
        return
    expires = message.get("expiresIn")
    tokens = TokenRefresh(
        access_token=str(message.get("accessToken") or ""),
        refresh_token=message.get("refreshToken"),
        expires_in=float(expires) if isinstance(expires, int | float) else None,
    )
    call.refreshes.append(tokens)
    if call.on_token_refresh is not None:
        coro = _persist_tokens(call.on_token_refresh, str(message["exec"]), tokens)
        key = f"token{len(call.refreshes)}"
        call.tasks[key] = asyncio.get_running_loop().create_task(coro)


async def _persist_tokens(handler: TokenHandler, exec_id: str, tokens: TokenRefresh) -> None:
    try:
        await handler(exec_id, tokens)
    except Exception as exc:  # the delivery itself went on with the new token
        log.warning("bridge: persisting refreshed OAuth tokens failed: %s", exc)


async def _answer_fetch(
    process: Process, call: Call | None, message: dict[str, Any], reply: Reply
) -> None:
    if call is None:
        answer = {"op": "fetch_result", "id": message["id"], "code": "EBRIDGE",
                  "error": "the execution is no longer waiting"}  # fmt: skip
    else:
        answer, exchange = await answer_fetch(call.fetch, message)
        call.exchanges.append(exchange)
    await reply(process, answer)
