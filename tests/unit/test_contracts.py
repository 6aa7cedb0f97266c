"""Typed contracts: a LoRA run's configuration is one schema (TrainingConfig) and one message (LoraConfig)."""

from __future__ import annotations

import dataclasses

import pytest

from dyag.v1 import training_pb2
from dyag_core.training import TrainingConfig, TrainingInputError
from dyag_runtime.contracts import lora_config_dict, lora_config_message


def test_the_message_has_exactly_the_schema_s_fields():
    schema = {f.name for f in dataclasses.fields(TrainingConfig)}
    message = {f.name for f in training_pb2.LoraConfig.DESCRIPTOR.fields}
    assert message == schema


def test_a_configuration_travels_as_given_and_unset_stays_unset():
    options = {
        "base_model": "smollm2-135m",
        "preset": "knowledge",
        "epochs": 3,
        "learning_rate": 1e-3,
        "packing": False,
        "max_steps": 0,
        "target_modules": ["all-linear"],
        "load_in_4bit": False,
        "r": None,
    }
    back = lora_config_dict(lora_config_message(options))
    assert back == {k: v for k, v in options.items() if v is not None}  # a zero and a False travel; None is unset
    assert TrainingConfig.from_dict(back) == TrainingConfig.from_dict(options)
    assert lora_config_dict(training_pb2.LoraConfig()) == {}  # nothing given: every value from the preset


def test_values_are_checked_before_they_travel():
    assert lora_config_dict(lora_config_message({"epochs": "4"})) == {"epochs": 4}  # coerced as the schema does
    with pytest.raises(TrainingInputError, match="unknown training option.*rank"):
        lora_config_message({"rank": 8})
    with pytest.raises(TrainingInputError, match="learning_rate must be between 0 and 1"):
        lora_config_message({"learning_rate": 5})


def test_a_job_result_is_read_back_as_its_message():
    from dyag.v1 import dataset_pb2
    from dyag_runtime.contracts import job_result, job_result_dict

    written = job_result_dict(dataset_pb2.DatasetBuildResult(dataset_id="ds-1", split_counts={"train": 8}))
    assert written["warnings"] == [] and written["sizing"] == ""  # every field, even empty
    record = {"result": {**written, "split_counts": {"train": 8.0}}}  # a Struct's numbers come back as floats
    result = job_result(record, dataset_pb2.DatasetBuildResult)
    assert result.dataset_id == "ds-1" and dict(result.split_counts) == {"train": 8}


def test_an_incremental_build_s_result_names_the_changed_entities():
    from dyag.v1 import dataset_pb2
    from dyag_runtime.contracts import job_result, job_result_dict

    full = job_result_dict(dataset_pb2.DatasetBuildResult(dataset_id="ds-1", regenerated_examples=800))
    assert full["changed_entity_ids"] == [] and full["regenerated_examples"] == 800
    written = job_result_dict(
        dataset_pb2.DatasetBuildResult(dataset_id="ds-2", changed_entity_ids=["12", "7"], regenerated_examples=41)
    )
    result = job_result({"result": {**written, "regenerated_examples": 41.0}}, dataset_pb2.DatasetBuildResult)
    assert list(result.changed_entity_ids) == ["12", "7"] and result.regenerated_examples == 41
