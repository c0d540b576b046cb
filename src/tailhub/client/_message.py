"""A message received from the hub, as a small typed value that keeps the frame it came in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

__all__ = ["Message", "Subscribed"]

_decoder: Final = msgspec.json.Decoder(dict[str, Any])


@dataclass(frozen=True, slots=True)
class Message:
    """One JSON object the hub sent.

    Attributes:
        type: the message type, lower case (``log``, ``status``, ``complete``, ``command``...).
        container_id: its ``containerID``, if any.
        seq: the hub's sequence number, on stored messages (``log``, ``status``, ``complete``,
            ``error`` from a container); None on hub replies.
        timestamp: RFC 3339 time, if any.
        data: the ``data`` object (empty when there is none).
        raw: the frame exactly as received, for printing or forwarding unchanged.
        fields: the whole decoded object.
    """

    type: str
    container_id: str | None
    seq: int | None
    timestamp: str | None
    data: dict[str, Any]
    raw: str = field(repr=False)
    fields: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_frame(cls, frame: str | bytes) -> Message:
        """Decode one text frame.

        Raises:
            ValueError: the frame is not a JSON object with a string ``type``.
        """
        try:
            obj = _decoder.decode(frame)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ValueError(f"the hub sent a frame that is not a JSON object: {exc}") from None
        kind = obj.get("type")
        if not isinstance(kind, str):
            raise ValueError("the hub sent a message without a type")
        data = obj.get("data")
        seq = obj.get("seq")
        container_id = obj.get("containerID")
        timestamp = obj.get("timestamp")
        return cls(
            type=kind.lower(),
            container_id=container_id if isinstance(container_id, str) else None,
            seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
            timestamp=timestamp if isinstance(timestamp, str) else None,
            data=data if isinstance(data, dict) else {},
            raw=frame if isinstance(frame, str) else frame.decode("utf-8", "replace"),
            fields=obj,
        )

    @property
    def is_stored(self) -> bool:
        """True for a container's message the hub stamped with ``seq`` (history)."""
        return self.seq is not None


@dataclass(frozen=True, slots=True)
class Subscribed:
    """The hub's answer to a ``subscribe``.

    Attributes:
        container_id: the ID or pattern subscribed to.
        seq: the container's last ``seq`` when the subscription started (0: none yet); the
            backlog sent after this reply ends with it. None for a pattern.
        first_seq: the oldest ``seq`` still kept (0: none). None for a pattern.
        truncated: some messages asked for with ``since`` are no longer kept; the backlog
            starts at ``first_seq``.
    """

    container_id: str
    seq: int | None
    first_seq: int | None
    truncated: bool

    @classmethod
    def from_message(cls, message: Message) -> Subscribed:
        """Read a ``subscribed`` reply."""
        fields = message.fields
        seq = fields.get("seq")
        first = fields.get("firstSeq")
        return cls(
            container_id=message.container_id or "",
            seq=seq if isinstance(seq, int) else None,
            first_seq=first if isinstance(first, int) else None,
            truncated=fields.get("truncated") is True,
        )
