"""Hypothesis strategies for hostile input: every message type of the protocol, well-formed
or not, and byte-level mutations of them (invalid UTF-8, truncation, deep nesting)."""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.hostile.harness import CANARY_SECRET

__all__ = ["draw_frames", "random_frames"]

TYPES = [
    "log",
    "status",
    "heartbeat",
    "complete",
    "error",
    "subscribe",
    "unsubscribe",
    "sessions",
    "command",
    "auth",
    "LOG",
    "Status",
    "ack",
    "subscribed",
    "",
    "nope",
]
CONTAINERS = [f"fuzz-{n}" for n in range(8)]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(["\u2028", "\x00", "\ud7ff", "²", "*", "-1", "1e999"]),
)
secrets = scalars | st.just(CANARY_SECRET)
"""Where a secret may be: tokens and free text. The hub's error words quote a bad ``type``,
``level``, ``status`` or time back to its sender, and errors name the ``containerID``, so the
canary goes only where nothing may echo it."""
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


secret_values = st.recursive(
    secrets,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _data(kind: str) -> st.SearchStrategy[Any]:
    known = {
        "log": st.fixed_dictionaries(
            {
                "level": st.sampled_from(["debug", "info", "warn", "error", "WARNING", "x", ""])
                | scalars,
                "message": st.text(max_size=60) | secrets,
            },
            optional={"metadata": secret_values, "extra": secret_values},
        ),
        "status": st.fixed_dictionaries(
            {
                "status": st.sampled_from(["starting", "running", "completed", "error", "failed"])
                | scalars
            },
            optional={"message": secrets},
        ),
        "complete": st.fixed_dictionaries(
            {"exitCode": st.integers(min_value=-(2**64), max_value=2**64) | scalars},
            optional={"message": secrets, "duration": scalars},
        ),
        "error": st.fixed_dictionaries(
            {"error": secrets}, optional={"code": scalars, "details": secret_values}
        ),
        "heartbeat": st.fixed_dictionaries({}, optional={"uptime": scalars, "timestamp": scalars}),
        "command": st.fixed_dictionaries(
            {"action": st.sampled_from(["cancel", "input", "approve", ""]) | scalars},
            optional={"text": secrets},
        ),
    }
    return known.get(kind.lower(), json_values)


@st.composite
def good_messages(draw: st.DrawFn) -> Any:
    """A message of a real type with every field of the right kind (text of any code point,
    lone surrogates included, which are not UTF-8 once encoded)."""
    kind = draw(st.sampled_from(["log", "status", "complete", "error", "heartbeat"]))
    data: dict[str, Any] = {
        "log": {"level": draw(st.sampled_from(["debug", "info", "warn", "error"]))},
        "status": {"status": draw(st.sampled_from(["starting", "running", "completed"]))},
        "complete": {"exitCode": draw(st.integers(-255, 255))},
        "error": {"error": draw(st.text(max_size=40))},
        "heartbeat": {},
    }[kind]
    if kind != "heartbeat":
        data["message"] = draw(st.text(max_size=80) | secrets.filter(lambda v: isinstance(v, str)))
    if draw(st.booleans()):
        data[draw(st.text(max_size=8))] = draw(secret_values)
    message = {"type": kind, "containerID": draw(st.sampled_from(CONTAINERS)), "data": data}
    if draw(st.booleans()):
        message["id"] = draw(st.integers(1, 2**63 - 1))
        message["producer"] = draw(st.sampled_from(["a", "b"]))
    return message


@st.composite
def messages(draw: st.DrawFn) -> Any:
    """One client message as a JSON value: mostly the shape of a real type, often wrong."""
    kind = draw(st.sampled_from(TYPES))
    message: dict[str, Any] = {"type": kind}
    if draw(st.booleans()):
        message["containerID"] = draw(st.sampled_from(CONTAINERS) | st.text(max_size=12) | scalars)
    if draw(st.integers(0, 3)):
        message["data"] = draw(_data(kind))
    optional = {
        "timestamp": st.sampled_from(["2024-01-01T00:00:00Z", "yesterday", ""]) | scalars,
        "since": st.integers(min_value=-5, max_value=2**64) | scalars,
        "tail": st.integers(min_value=-5, max_value=2**64) | scalars,
        "from": st.sampled_from(["2024-01-01T00:00:00Z", "²"]) | scalars,
        "id": st.integers(min_value=-5, max_value=2**65) | scalars,
        "producer": st.text(max_size=10) | scalars,
        "auth": st.fixed_dictionaries({"token": secrets}) | scalars,
        "token": secrets,
        "epoch": scalars,
    }
    for name in draw(st.lists(st.sampled_from(sorted(optional)), max_size=3, unique=True)):
        message[name] = draw(optional[name])
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    return message


def _mutate(rng: random.Random, raw: bytes) -> bytes:
    """One byte-level mutation: invalid UTF-8 inside, truncation, a flipped byte, nesting."""
    choice = rng.randrange(6)
    if choice == 0 and raw:
        at = rng.randrange(len(raw))
        return raw[:at] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80"]) + raw[at:]
    if choice == 1 and raw:
        return raw[: rng.randrange(len(raw))]
    if choice == 2 and raw:
        at = rng.randrange(len(raw))
        return raw[:at] + bytes([rng.randrange(256)]) + raw[at + 1 :]
    if choice == 3:
        depth = rng.choice([100, 1000, 5000])
        return raw.replace(b"{", b"[" * depth + b"{", 1) + b"]" * depth
    if choice == 4:
        return raw + raw
    return raw


def draw_frames(count: int, seed: int, *, drawn: int = 1000) -> list[bytes]:
    """``count`` payloads: ``drawn`` hypothesis messages encoded as JSON (a third of them
    mutated), then byte-level mutations of those up to ``count`` (hypothesis draws about
    250 messages a second here, mutations a hundred times more)."""
    out: list[bytes] = []
    rng = random.Random(seed)

    @settings(
        max_examples=max(1, min(count, drawn) // 10),
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(good_messages() | messages(), min_size=10, max_size=10))
    def gather(batch: list[Any]) -> None:
        for message in batch:
            raw = json.dumps(message, ensure_ascii=rng.random() < 0.5).encode(
                "utf-8", "surrogatepass"
            )
            # A mutation can move the canary into a field errors quote back (a type, a
            # containerID): messages carrying it are sent as drawn.
            mutate = rng.random() < 0.34 and CANARY_SECRET.encode() not in raw
            out.append(_mutate(rng, raw) if mutate else raw)

    gather()
    base = [raw for raw in out if CANARY_SECRET.encode() not in raw]
    while len(out) < count:
        out.append(_mutate(rng, rng.choice(base)))
    return out[:count]


def random_frames(count: int, seed: int) -> list[bytes]:
    """``count`` payloads of random bytes, some of them dressed as JSON objects."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        body = rng.randbytes(rng.randrange(0, 200))
        if rng.random() < 0.5:
            body = (
                b'{"type":"log","containerID":"fuzz-0","data":{"level":"info","message":"'
                + body
                + b'"}}'
            )
        out.append(body)
    return out
