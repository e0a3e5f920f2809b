"""The wire format: one versioned JSON envelope per task, and the value codec.

An envelope is a JSON object, so workers in any language can read it::

    {"v": 1, "id": "<uuid>", "task": "app.tasks.send_mail", "backend": "default",
     "args": [...], "kwargs": {...}, "queue": "default", "priority": 0,
     "eta": "2026-01-01T00:00:00+00:00" | null, "expires": ... | null,
     "attempt": 1, "headers": {}}

``attempt`` counts from 1. Argument values that JSON has no type for are
tagged: ``{"__djtasks__": "datetime", "value": "2026-01-01T10:00:00+01:00"}``
(also ``date``, ``time``, ``timedelta``, ``decimal``, ``uuid``, ``bytes``, and
``dict`` for a mapping that itself uses the tag key), so they come back as the
same type and value. Nothing outside this module knows the encoded bytes.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .exceptions import MessageDecodeError, SerializationError

ENVELOPE_VERSION = 1
TAG = "__djtasks__"


# -- values -----------------------------------------------------------------

def dump_value(value: Any) -> Any:
    """Turn ``value`` into a tree of JSON types, tagging what JSON lacks.

    Raise :class:`SerializationError` for a value of any other type.
    """
    match value:
        case None | bool() | int() | float() | str():
            return value
        case dt.datetime():
            if isinstance(value.tzinfo, ZoneInfo):
                # Keep the zone, not only today's offset: a time in a DST gap or
                # fold only compares equal to itself in its own zone.
                return {TAG: "datetime", "value": value.isoformat(), "tz": value.tzinfo.key, "fold": value.fold}
            return {TAG: "datetime", "value": value.isoformat()}
        case dt.date():
            return {TAG: "date", "value": value.isoformat()}
        case dt.time():
            return {TAG: "time", "value": value.isoformat()}
        case dt.timedelta():
            return {TAG: "timedelta", "value": [value.days, value.seconds, value.microseconds]}
        case Decimal():
            return {TAG: "decimal", "value": str(value)}
        case uuid.UUID():
            return {TAG: "uuid", "value": str(value)}
        case bytes():
            return {TAG: "bytes", "value": base64.b64encode(value).decode("ascii")}
        case Mapping():
            if not all(isinstance(key, str) for key in value):
                raise SerializationError("mapping keys must be strings")
            items = {key: dump_value(item) for key, item in value.items()}
            return {TAG: "dict", "value": items} if TAG in value else items
        case list() | tuple():
            return [dump_value(item) for item in value]
        case _:
            raise SerializationError(f"a value of type {type(value).__qualname__} cannot be sent as JSON")


def _load_datetime(tree: dict[str, Any]) -> dt.datetime:
    moment = dt.datetime.fromisoformat(tree["value"])
    if "tz" in tree:
        moment = moment.replace(tzinfo=ZoneInfo(tree["tz"]), fold=tree.get("fold", 0))
    return moment


_DECODERS = {
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "timedelta": lambda parts: dt.timedelta(days=parts[0], seconds=parts[1], microseconds=parts[2]),
    "decimal": Decimal,
    "uuid": uuid.UUID,
    "bytes": lambda text: base64.b64decode(text.encode("ascii")),
    "dict": lambda items: {key: load_value(item) for key, item in items.items()},
}


def load_value(tree: Any) -> Any:
    """Inverse of :func:`dump_value`."""
    if isinstance(tree, list):
        return [load_value(item) for item in tree]
    if isinstance(tree, dict):
        tag = tree.get(TAG)
        if tag is None:
            return {key: load_value(item) for key, item in tree.items()}
        try:
            return _load_datetime(tree) if tag == "datetime" else _DECODERS[tag](tree["value"])
        except (KeyError, TypeError, ValueError, ArithmeticError, ZoneInfoNotFoundError) as exc:
            raise MessageDecodeError(f"bad tagged value {tree!r}: {exc}") from exc
    return tree


def dump_arguments(task_path: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """Encode a call's arguments, naming the first one that cannot be encoded."""
    try:
        return [dump_value(value) for value in args], {name: dump_value(value) for name, value in kwargs.items()}
    except SerializationError:
        _name_the_culprit(task_path, args, kwargs)
        raise


def _name_the_culprit(task_path: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    """Encode the arguments one at a time; raise for the first that fails, saying which it is."""
    labelled = [(f"positional argument {position}", value) for position, value in enumerate(args)]
    labelled += [(f"argument {name!r}", value) for name, value in kwargs.items()]
    for label, value in labelled:
        try:
            dump_value(value)
        except SerializationError as exc:
            raise SerializationError(
                f"{label} of task {task_path!r} cannot be serialized: {exc}. "
                "Pass JSON types, datetime/date/time/timedelta, Decimal, UUID or bytes "
                "(for a model instance, pass its primary key)."
            ) from None


# -- envelopes --------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """One task call on the wire. ``args``/``kwargs`` hold dumped values."""

    id: str
    task: str
    backend: str
    queue: str
    priority: int = 0
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    eta: dt.datetime | None = None
    expires: dt.datetime | None = None
    attempt: int = 1
    headers: dict[str, Any] = field(default_factory=dict)

    def load_args(self) -> tuple[list[Any], dict[str, Any]]:
        """The call's arguments as Python values."""
        return load_value(self.args), load_value(self.kwargs)


def new_ids(count: int) -> list[str]:
    """``count`` new task ids: random (version 4) UUIDs as text, from one ``os.urandom`` call.

    The same values as ``str(uuid.uuid4())``, at a quarter of its cost.
    """
    ids = []
    random = os.urandom(16 * count)
    for start in range(0, 16 * count, 16):
        octets = bytearray(random[start:start + 16])
        octets[6] = octets[6] & 0x0F | 0x40  # version 4
        octets[8] = octets[8] & 0x3F | 0x80  # RFC 4122 variant
        text = octets.hex()
        ids.append(f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}")
    return ids


_JSON = json.JSONEncoder(separators=(",", ":"))
_JSON_DECODER = json.JSONDecoder()


def encode(envelope: Envelope) -> bytes:
    """Serialize an envelope to bytes."""
    return _JSON.encode(_shared_fields(envelope) | {
        "id": envelope.id, "args": envelope.args, "kwargs": envelope.kwargs}).encode()


def _shared_fields(envelope: Envelope) -> dict[str, Any]:
    """The fields that the calls of one task share; built field by field (``asdict()`` would deep-copy)."""
    return {"task": envelope.task, "backend": envelope.backend, "queue": envelope.queue,
            "priority": envelope.priority, "eta": envelope.eta.isoformat() if envelope.eta else None,
            "expires": envelope.expires.isoformat() if envelope.expires else None,
            "attempt": envelope.attempt, "headers": envelope.headers, "v": ENVELOPE_VERSION}


class CallEncoder:
    """Serializes envelopes that differ from ``model`` in their id and arguments only: calls of one task.

    What the calls share is encoded once, so each envelope costs the
    encoding of its id and arguments (``enqueue_many`` encodes a batch so).
    """

    def __init__(self, model: Envelope) -> None:
        self._head = _JSON.encode(_shared_fields(model))[:-1] + ","  # the object, still open

    def encode(self, envelope: Envelope) -> bytes:
        """Serialize ``envelope``, whose other fields are those of the model."""
        # One encoder call for the rest, whose own opening brace is dropped.
        rest = _JSON.encode({"id": envelope.id, "args": envelope.args, "kwargs": envelope.kwargs})
        return (self._head + rest[1:]).encode()


def decode(data: bytes | str) -> Envelope:
    """Parse bytes made by :func:`encode`; raise :class:`MessageDecodeError`."""
    try:
        text = data.decode() if isinstance(data, bytes) else data
        body, end = _JSON_DECODER.raw_decode(text)  # json.loads' checks, in C; trailing text refused below
        if end != len(text) and text[end:].strip():
            raise MessageDecodeError(f"cannot decode message: extra data at character {end}")
        if type(body) is not dict:
            raise MessageDecodeError(f"cannot decode message: a JSON {type(body).__name__}, not an object")
        version = body.pop("v")
        if version != ENVELOPE_VERSION:
            raise MessageDecodeError(f"unsupported envelope version {version!r}")
        for name, value in body.items():
            types = _FIELD_TYPES.get(name)
            if types is None:
                raise MessageDecodeError(f"cannot decode message: unknown field {name!r}")
            if type(value) not in types:  # exact types: JSON gives no subclass, and bool is no int
                raise MessageDecodeError(f"cannot decode message: field {name!r} has the wrong type "
                                         f"({type(value).__name__})")
        for name in ("eta", "expires"):
            if body.get(name) is not None:
                body[name] = dt.datetime.fromisoformat(body[name])
        return Envelope(**body)
    except MessageDecodeError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise MessageDecodeError(f"cannot decode message: {exc}") from exc


#: The JSON types of the envelope's fields (moments are ISO text).
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,), "task": (str,), "backend": (str,), "queue": (str,), "priority": (int,), "args": (list,),
    "kwargs": (dict,), "attempt": (int,), "headers": (dict,), "eta": (str, type(None)), "expires": (str, type(None)),
}
