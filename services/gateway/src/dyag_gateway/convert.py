"""Protobuf replies as the JSON the HTTP API returns."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from dyag.v1 import jobs_pb2
from dyag_runtime.jobs import proto_to_dict


def to_json(message: Message) -> dict[str, Any]:
    if isinstance(message, jobs_pb2.Job):
        return proto_to_dict(message)
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
