"""Shape check for webhook updates, before python-telegram-bot sees them.

``Update.de_json`` trusts its input (a ``caption`` that is an object stays an object), so a
malformed or hostile POST that passed the secret check could crash deep inside a turn.  Real
updates always have these types; anything else is refused with 400 naming the field.  Only the
fields Kefu reads are checked; unknown fields pass, since Telegram adds new ones over time.
"""

from __future__ import annotations

from typing import Any

from bot.errors import BadRequest

MAX_INT = 2**53  # Telegram's ids fit in 52 bits (documented for chat ids); dates in 32
Spec = dict[str, Any]  # field → type, nested Spec, or [Spec] for a list of objects

_FILE: Spec = {"file_id": str, "file_unique_id": str, "file_name": str, "mime_type": str, "file_size": int,
               "width": int, "height": int, "duration": int, "emoji": str}
_USER: Spec = {"id": int, "is_bot": bool, "first_name": str, "last_name": str, "username": str, "language_code": str}
_CHAT: Spec = {"id": int, "type": str, "title": str, "username": str, "first_name": str}
_ENTITY: Spec = {"type": str, "offset": int, "length": int}
_MESSAGE: Spec = {
    "message_id": int, "date": int, "chat": _CHAT, "from": _USER, "text": str, "caption": str,
    "entities": [_ENTITY], "caption_entities": [_ENTITY], "photo": [_FILE], "document": _FILE, "sticker": _FILE,
    "voice": _FILE, "audio": _FILE, "video": _FILE, "video_note": _FILE, "animation": _FILE,
    "location": {"latitude": (int, float), "longitude": (int, float)}, "contact": {"phone_number": str},
}
_MESSAGE["reply_to_message"] = _MESSAGE
_CALLBACK: Spec = {"id": str, "from": _USER, "message": _MESSAGE, "data": str, "chat_instance": str}
_UPDATE: Spec = {"update_id": int, "message": _MESSAGE, "edited_message": _MESSAGE, "channel_post": _MESSAGE,
                 "edited_channel_post": _MESSAGE, "callback_query": _CALLBACK}
_REQUIRED: dict[int, tuple[str, ...]] = {id(_UPDATE): ("update_id",), id(_MESSAGE): ("message_id", "date", "chat"),
                                         id(_CHAT): ("id", "type"), id(_USER): ("id",), id(_CALLBACK): ("id", "from"),
                                         id(_FILE): ("file_id",)}


def check_update(data: Any) -> None:
    """Raise :class:`BadRequest` unless ``data`` has the shape of a Telegram update."""
    _check(data, _UPDATE, "update")


def _check(value: Any, spec: Spec, path: str) -> None:
    if not isinstance(value, dict):
        raise BadRequest(f"not a Telegram update: {path} must be an object")
    for name in _REQUIRED.get(id(spec), ()):
        if name not in value:
            raise BadRequest(f"not a Telegram update: {path}.{name} is missing")
    for name, expected in spec.items():
        if name not in value:
            continue
        item, where = value[name], f"{path}.{name}"
        if isinstance(expected, dict):
            _check(item, expected, where)
        elif isinstance(expected, list):
            if not isinstance(item, list):
                raise BadRequest(f"not a Telegram update: {where} must be a list")
            for i, element in enumerate(item):
                _check(element, expected[0], f"{where}[{i}]")
        elif not isinstance(item, expected) or (expected is int and isinstance(item, bool)):
            raise BadRequest(f"not a Telegram update: {where} has the wrong type")
        elif expected is int and abs(item) >= MAX_INT:
            raise BadRequest(f"not a Telegram update: {where} is out of range")
