"""Typed contracts between services, to and from the domain's own types.

A job's result travels in the generic job record (JSON); each kind's result is a message all the same
(`job_result_dict` writes it, `job_result` reads it back), so that its producer and its readers share one
definition instead of string keys.

A LoRA run's configuration is one schema, dyag_core.training.TrainingConfig; on the wire it is the LoraConfig
message (training.proto), field for field. `lora_config_message` validates a configuration before it travels (an
unknown option or a wrong value is refused by name, where it was given); `lora_config_dict` reads it back as the
options that were set (unset ones take the preset's value).
"""

from __future__ import annotations

from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from dyag.v1 import training_pb2
from dyag_core.training import TrainingConfig, TrainingInputError


def lora_config_message(options: dict[str, Any]) -> training_pb2.LoraConfig:
    """The options given (None: unset), validated as a TrainingConfig, as a LoraConfig message."""
    config = TrainingConfig.from_dict(options)  # raises TrainingInputError (invalid_config) naming the problem
    values = config.to_dict()
    given = {name: values[name] for name, value in options.items() if value is not None}
    try:
        return json_format.ParseDict(given, training_pb2.LoraConfig())
    except json_format.ParseError as exc:  # a number past the field's int32: "Failed to parse seed field: …"
        raise TrainingInputError("invalid_config", f"training option: {exc}") from None


def lora_config_dict(message: training_pb2.LoraConfig) -> dict[str, Any]:
    """The options a LoraConfig sets, by TrainingConfig's field names."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


M = TypeVar("M", bound=Message)


def job_result_dict(result: Message) -> dict[str, Any]:
    """A job's typed result as the job record keeps it (every field, even empty)."""
    return json_format.MessageToDict(
        result, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def job_result(job: dict[str, Any], message_type: type[M]) -> M:
    """A finished job's result (from its record or proto_to_dict) as the message its kind produces."""
    return json_format.ParseDict(job.get("result") or {}, message_type(), ignore_unknown_fields=True)
