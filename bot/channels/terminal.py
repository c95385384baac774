"""``kefu chat``: talk to the bot in a terminal, or pipe lines in (one message per line)."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from typing import TextIO

from bot.engine import Engine
from bot.types import InboundMessage

CHANNEL = "terminal"


async def chat_loop(engine: Engine, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
    interactive = stdin.isatty()
    session = uuid.uuid4().hex[:12]
    if interactive:
        stdout.write("Kefu 客服 — type a message, Ctrl-D to quit.\n")
    number = 0
    while True:
        if interactive:
            stdout.write("you> ")
            stdout.flush()
        line = await asyncio.to_thread(stdin.readline)
        if not line:
            break
        text = line.strip()
        if not text:
            continue
        number += 1
        msg = InboundMessage(CHANNEL, session, session, text, f"{session}-{number}", time.time())
        result = await engine.handle(msg)
        for reply in result.replies:
            stdout.write(f"kefu> {reply.text}\n")
        if result.handoff is not None:
            stdout.write(f"      [handed off to a human agent: {result.handoff.reason}"
                         f"{' — ' + result.handoff.detail if result.handoff.detail else ''}]\n")
        stdout.flush()
