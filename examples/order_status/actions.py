"""``action_order_status``: a plain rasa-sdk action, usable by Kefu and by a Rasa assistant alike.

* finds the order number in the customer's message (``A123456``) or in the ``order_number``
  slot; without one it asks for it and sets ``requested_slot`` (Kefu then sends the customer's
  next message back to this action);
* calls the company's order API (``ORDER_API_URL``, default http://127.0.0.1:8089);
* answers by setting slots: Kefu fills the knowledge entry's ``answer`` template with them, and a
  Rasa assistant renders ``utter_order_status`` from its domain.

Errors from the order API are deliberately not caught: Kefu turns any exception or timeout into
a polite reply and a handoff to a human, so the example stays about the business logic.
"""

from __future__ import annotations

import os
import re
from typing import Any

import httpx
from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

ORDER_NUMBER = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]\d{6,12}|\d{10,20})(?![A-Za-z0-9])")
STATUS = {
    "processing": {"zh": "商家备货中", "en": "being prepared"},
    "in_transit": {"zh": "运输中", "en": "in transit"},
    "delivered": {"zh": "已签收", "en": "delivered"},
}
ASK = {
    "zh": "好的，请告诉我您的订单号（例如 A123456），我马上帮您查询。",
    "en": "Sure, what's your order number (for example A123456)? I'll look it up right away.",
}
NOT_FOUND = {
    "zh": "暂时没有查到订单 {number} 的信息，麻烦您核对一下订单号再发给我；也可以回复“转人工”由人工客服帮您查。",
    "en": "I couldn't find order {number} just now. Could you double-check the number and send it again? "
          "Or say \"agent\" and a colleague will look into it.",
}


def order_api_url() -> str:
    return os.environ.get("ORDER_API_URL", "http://127.0.0.1:8089").rstrip("/")


def find_order_number(text: str) -> str | None:
    match = ORDER_NUMBER.search(text or "")
    return match.group(1).upper() if match else None


class ActionOrderStatus(Action):
    def name(self) -> str:
        return "action_order_status"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        language = "en" if tracker.get_slot("kefu_language") == "en" else "zh"
        text = str(tracker.latest_message.get("text") or "")
        number = find_order_number(text)
        if number is None:
            dispatcher.utter_message(text=ASK[language])
            return [SlotSet("requested_slot", "order_number")]
        async with httpx.AsyncClient(timeout=3.0) as client:
            response = await client.get(f"{order_api_url()}/orders/{number}")
        if response.status_code == 404:
            dispatcher.utter_message(text=NOT_FOUND[language].format(number=number))
            return [SlotSet("requested_slot", "order_number")]
        response.raise_for_status()
        order = response.json()
        status = STATUS.get(order["status"], {}).get(language, order["status"])
        slots = {"order_number": number, "order_status": status, "carrier": order["carrier"],
                 "tracking_number": order["tracking_number"], "eta": order["eta"]}
        dispatcher.utter_message(response="utter_order_status", **slots)  # Rasa renders it; Kefu uses the template
        return [SlotSet(name, value) for name, value in slots.items()] + [SlotSet("requested_slot", None)]
