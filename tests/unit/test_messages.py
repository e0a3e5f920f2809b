"""The wire format: values round-trip exactly, bad input fails clearly."""

import dataclasses
import datetime as dt
import json
import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from djtasks import messages
from djtasks.exceptions import MessageDecodeError, SerializationError

VALUES = [
    dt.datetime(2026, 3, 29, 2, 30, 15, 123456, tzinfo=ZoneInfo("Europe/Paris")),
    dt.datetime(2026, 1, 1, 9, 0),
    dt.date(2024, 2, 29),
    dt.time(23, 59, 59, 999999),
    dt.timedelta(days=-1, seconds=5, microseconds=7),
    Decimal("12345678901234567890.000000000001"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    b"\x00\xffbytes",
    {"__djtasks__": "not a tag", "nested": [Decimal("1.10")]},
    [1, "two", 3.0, None, True, {"a": {"b": []}}],
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_values_round_trip_with_type_and_value(value):
    envelope = messages.Envelope(id="1", task="t", backend="default", queue="q", args=[messages.dump_value(value)])
    decoded = messages.decode(messages.encode(envelope))
    [back], _ = decoded.load_args()
    assert back == value
    assert type(back) is type(value)
    if isinstance(value, dt.datetime):
        assert back.utcoffset() == value.utcoffset()


def test_decimal_keeps_its_exponent():
    back = messages.load_value(messages.dump_value(Decimal("1.10")))
    assert str(back) == "1.10"


def test_tuples_become_lists():
    assert messages.load_value(messages.dump_value((1, (2, 3)))) == [1, [2, 3]]


def test_envelope_round_trip_keeps_every_field():
    envelope = messages.Envelope(
        id=str(uuid.uuid4()), task="app.tasks.x", backend="b", queue="mail", priority=-3, args=[1],
        kwargs={"a": 2}, eta=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), expires=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
        attempt=4, headers={"periodic_task": "nightly"},
    )
    assert messages.decode(messages.encode(envelope)) == envelope
    names = {f.name for f in dataclasses.fields(messages.Envelope)}
    assert set(json.loads(messages.encode(envelope))) == names | {"v"}


def test_the_encoded_envelope_is_versioned_plain_json():
    body = messages.encode(messages.Envelope(id="1", task="t", backend="default", queue="q"))
    assert body.startswith(b"{") and b'"v":1' in body


def test_an_unserializable_argument_is_named():
    with pytest.raises(SerializationError, match=r"argument 'user' of task 'app.t' cannot be serialized.*object"):
        messages.dump_arguments("app.t", [1], {"user": object()})
    with pytest.raises(SerializationError, match="positional argument 1 of task"):
        messages.dump_arguments("app.t", [1, {1, 2}], {})


def test_a_call_encoder_encodes_each_call_of_a_task_as_encode_does():
    moment = dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC)
    model = messages.Envelope(id="", task="app.t", backend="b", queue="q", priority=-3, eta=moment,
                              expires=moment + dt.timedelta(hours=1), headers={"periodic_task": "p"})
    encoder = messages.CallEncoder(model)
    for n, (args, kwargs) in enumerate([([], {}), ([1, "a\"b"], {"x": {"__djtasks__": "dict", "value": {}}})]):
        call = dataclasses.replace(model, id=f"id-{n}", args=args, kwargs=kwargs)
        assert messages.decode(encoder.encode(call)) == call == messages.decode(messages.encode(call))


def test_new_ids_are_distinct_version_4_uuids_in_canonical_text():
    ids = messages.new_ids(2000)
    assert len(set(ids)) == 2000
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == text


def test_serialization_error_is_a_type_error():
    assert issubclass(SerializationError, TypeError)


def test_non_string_mapping_keys_are_refused():
    with pytest.raises(SerializationError, match="keys must be strings"):
        messages.dump_value({1: "a"})


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"v": 99}', b'{"v": 1, "id": "x"}',
                                  b'{"v": 1, "id": "1", "task": "t", "backend": "b", "queue": "q", "eta": "soon"}'])
def test_undecodable_bodies_raise_message_decode_error(body):
    with pytest.raises(MessageDecodeError):
        messages.decode(body)


@pytest.mark.parametrize(("tail", "error"), [(b"}", "extra data"), (b'{"v": 1}', "extra data"),
                                            (b"\xff", "cannot decode")])
def test_a_body_with_more_after_its_envelope_is_a_decode_error(tail, error):
    body = messages.encode(messages.Envelope(id="1", task="t", backend="default", queue="q"))
    assert messages.decode(body + b" \n").id == "1"  # white space after it is JSON's own
    with pytest.raises(MessageDecodeError, match=error):
        messages.decode(body + tail)


def test_a_bad_tagged_value_raises_message_decode_error():
    with pytest.raises(MessageDecodeError):
        messages.load_value({"__djtasks__": "decimal", "value": "one"})


@pytest.mark.parametrize("field", ["task", "args", "kwargs", "priority", "attempt"])
def test_a_field_of_the_wrong_type_is_a_decode_error(field):
    body = json.loads(messages.encode(messages.Envelope(id="1", task="t", backend="default", queue="q")))
    body[field] = {"task": 123, "args": {"a": 1}, "kwargs": [1], "priority": "high", "attempt": True}[field]
    with pytest.raises(MessageDecodeError, match=field):
        messages.decode(json.dumps(body))


@pytest.mark.parametrize(("change", "error"), [({"colour": "red"}, "unknown field 'colour'"),
                                              ({"eta": ""}, "cannot decode"), ({"expires": 5}, "expires")])
def test_an_unknown_field_or_a_bad_moment_is_a_decode_error(change, error):
    body = json.loads(messages.encode(messages.Envelope(id="1", task="t", backend="default", queue="q")))
    with pytest.raises(MessageDecodeError, match=error):
        messages.decode(json.dumps(body | change))


def test_an_envelope_comes_back_equal_from_either_encoder():
    envelope = messages.Envelope(id="1", task="t", backend="default", queue="q", priority=3, args=[1, "é"],
                                 kwargs={"k": None}, eta=dt.datetime(2030, 1, 1, tzinfo=dt.UTC), headers={"h": 1})
    encoded = messages.encode(envelope)
    assert encoded == messages.CallEncoder(envelope).encode(envelope)
    assert messages.decode(encoded) == envelope
