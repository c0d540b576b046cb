"""The tailhub wire protocol: messages, decoding and checking, encoding, codes. No I/O."""

from tailhub.protocol.codec import (
    MAX_ID_LENGTH,
    ProtocolError,
    decode_client,
    encode,
    encode_ack,
    encode_error,
    encode_published,
    format_time,
    parse_time,
    validate_container_id,
)
from tailhub.protocol.codes import CloseCode, ErrorCode
from tailhub.protocol.messages import (
    LEVELS,
    PUBLISH_TYPES,
    ROUTED_TYPES,
    STATUSES,
    Auth,
    ClientMessage,
    Command,
    Publish,
    SessionsRequest,
    Subscribe,
    Unsubscribe,
)

__all__ = [
    "LEVELS",
    "MAX_ID_LENGTH",
    "PUBLISH_TYPES",
    "ROUTED_TYPES",
    "STATUSES",
    "Auth",
    "ClientMessage",
    "CloseCode",
    "Command",
    "ErrorCode",
    "ProtocolError",
    "Publish",
    "SessionsRequest",
    "Subscribe",
    "Unsubscribe",
    "decode_client",
    "encode",
    "encode_ack",
    "encode_error",
    "encode_published",
    "format_time",
    "parse_time",
    "validate_container_id",
]
