"""A customer (or someone with their session) floods the chat: what the customer really said and
what the agent needs must survive the transcript's trimming."""

from __future__ import annotations

from tests.bot.security.conftest import Served
from tests.loop import portal

ORDER = "我的订单号是 202611230001234，一直没发货"


def transcript(served: Served, conversation_id: str) -> list[str]:
    runtime = served.client.app.app.state.runtime  # type: ignore[attr-defined]
    conv = portal(served.client).call(runtime.store.load_conversation, conversation_id)
    return [line.text for line in conv.transcript]


def test_a_flood_does_not_push_out_the_order_number_before_or_after_the_handoff(served: Served) -> None:
    chat = served.client
    limit = served.config.store.transcript_max
    assert chat.post("/api/chat", json={"session": "flooder-01", "text": ORDER}).status_code == 200
    for i in range(200):
        assert chat.post("/api/chat", json={"session": "flooder-01", "text": f"在吗{i}"}).status_code == 200
    lines = transcript(served, "web:flooder-01")
    assert ORDER in lines and len(lines) <= limit
    answered = [t for t in lines if t.startswith("在吗")]
    assert len(answered) >= served.config.security.rate_limit_per_minute  # real, answered messages kept too

    for i in range(300):  # the flood goes on
        chat.post("/api/chat", json={"session": "flooder-01", "text": f"快点{i}"})
    lines = transcript(served, "web:flooder-01")
    assert ORDER in lines and len(lines) <= limit * 5
    served.login("li")
    tickets = chat.get("/api/agent/tickets").json()
    [ticket] = [t for t in tickets["queued"] if t["conversation_id"] == "web:flooder-01"]
    detail = chat.get(f"/api/agent/tickets/{ticket['id']}").json()
    assert ORDER in [line["text"] for line in detail["transcript"]]  # the agent sees what the customer needs
