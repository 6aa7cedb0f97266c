"""The limits on what comes in, without a stack: JSON depth and numbers (dyag_core.nesting), the gateway's shared
parameters (labels, lone surrogates, int32), Starlette's refusals in the error shape, and the OpenAPI links."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter, ValidationError

from dyag_core.nesting import MAX_DEPTH, NotJson, TooDeep, check_depth, loads
from dyag_gateway import links
from dyag_gateway.app import create_app
from dyag_gateway.errors import body_problem
from dyag_gateway.params import Body, Int32, Label, unencodable


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [1, 2, MAX_DEPTH])
def test_nesting_up_to_the_limit_is_read(depth):
    assert check_depth(json.loads(nested(depth))) is not None


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 900, 100_000])
def test_nesting_past_the_limit_is_too_deep_whatever_the_parser_makes_of_it(depth):
    with pytest.raises(TooDeep, match=f"more than {MAX_DEPTH} levels"):
        loads(nested(depth))


def test_depth_counts_objects_and_lists_alike():
    value = {"a": [{"b": 1}, {"c": [[]]}]}  # dict, list, dict, list, list
    check_depth(value, limit=5)
    with pytest.raises(TooDeep):
        check_depth(value, limit=4)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"x": NaN}', "NaN is not a JSON number"),
        ('{"x": -Infinity}', "-Infinity is not a JSON number"),
        ('{"x": 1e400}', "1e400 is too large"),
        ('{"x": 1' + "0" * 5000 + "}", "5,001 digits"),
    ],
)
def test_what_json_has_not_is_not_json(text, words):
    with pytest.raises(NotJson, match=words) as caught:
        loads(text)
    assert isinstance(caught.value, json.JSONDecodeError)  # callers that catch JSONDecodeError catch it too


@pytest.mark.parametrize("name", ["model v2", "retraining demo ∅ → 416a", "50% off", "a.b-c_d"])
def test_labels_may_be_any_text_but_a_path(name):
    assert TypeAdapter(Label).validate_python(name) == name


@pytest.mark.parametrize("name", ["../x", "a/b", "%2e%2e", "%2F", "a\x00b", "..", "x\\y", "tab\there"])
def test_path_like_labels_are_refused(name):
    with pytest.raises(ValidationError, match="reads as a path"):
        TypeAdapter(Label).validate_python(name)


def test_lone_surrogates_are_found_in_values_and_keys():
    assert unencodable({"a": ["ok", "\ud800"]}) == "a.1"
    assert unencodable({"\udfff": 1}) == "\\udfff"
    assert unencodable({"a": "😀", "b": [{"c": "é"}]}) is None


def test_a_body_with_a_lone_surrogate_is_refused_naming_the_field():
    class Named(Body):
        name: str = ""
        tags: list[str] = []

    with pytest.raises(ValidationError, match="tags.1: a string holds a lone UTF-16 surrogate"):
        Named.model_validate({"tags": ["a", "\ud800"]})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Named.model_validate({"other": 1})
    with pytest.raises(ValidationError, match="finite"):
        type("Num", (Body,), {"__annotations__": {"x": float}, "x": 0.0}).model_validate({"x": float("nan")})


@pytest.mark.parametrize("value", [2**31, -(2**31) - 1, 2**63])
def test_int32_bounds(value):
    with pytest.raises(ValidationError):
        TypeAdapter(Int32).validate_python(value)


def test_body_problems_name_their_cause():
    assert "64 levels" in body_problem(RecursionError())
    assert "0xff at offset 3" in body_problem(_decode_error())
    assert "4300 digits" in body_problem(ValueError("Exceeds the limit (4300 digits) for integer string conversion"))


def _decode_error() -> UnicodeDecodeError:
    try:
        b"abc\xff".decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc
    raise AssertionError


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app())  # no lifespan: no backends, only what the gateway answers itself


def test_starlette_refusals_have_the_error_shape(client):
    missing = client.get("/no/such/route")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "route_not_found"
    method = client.delete("/healthz")
    assert method.status_code == 405 and method.json()["error"]["code"] == "method_not_allowed"
    assert "GET" in method.json()["error"]["message"]


def test_every_declared_link_joins_two_operations_of_the_schema(client):
    schema = client.get("/openapi.json").json()
    operations = {op["operationId"] for item in schema["paths"].values() for op in item.values() if "operationId" in op}
    declared = 0
    for (method, path, status), entries in links.LINKS.items():
        response = schema["paths"][path][method]["responses"][status]
        for _, parameter, targets in entries:
            for target_method, target_path in targets:
                target = schema["paths"][target_path][target_method]
                assert target["operationId"] in operations
                assert parameter in {p["name"] for p in target.get("parameters", [])}, (target_path, parameter)
                assert response["links"][target["operationId"]]["parameters"] == {
                    parameter: response["links"][target["operationId"]]["parameters"][parameter]
                }
                declared += 1
    assert declared >= 30


HTTP_REQUEST_LINE = 65_000  # what uvicorn (httptools) reads of a request line; past it, its own bare 400


def test_every_parameter_is_bounded_and_no_url_the_schema_allows_is_too_long_for_the_server(client):
    """A string in a path or a query has a maxLength (or a pattern or a set of values), and the longest URL an
    operation allows, every character percent-encoded at 12 bytes (4-byte UTF-8), fits the server's request line:
    what the schema allows reaches the gateway, which answers in its error shape."""
    schema = client.get("/openapi.json").json()
    unbounded, too_long = [], []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            longest = len(path)
            for parameter in operation.get("parameters", []):
                if parameter["in"] not in ("path", "query"):
                    continue
                types = [parameter["schema"]] + parameter["schema"].get("anyOf", [])
                strings = [t for t in types if t.get("type") == "string"]
                if not strings:
                    longest += len(parameter["name"]) + 25  # a number or a boolean
                    continue
                bound = min((t["maxLength"] for t in strings if "maxLength" in t), default=None)
                if bound is None and not any("enum" in t or "pattern" in t for t in strings):
                    unbounded.append(f"{method.upper()} {path} {parameter['name']}")
                longest += len(parameter["name"]) + 2 + 12 * (bound or 200)
            if longest > HTTP_REQUEST_LINE:
                too_long.append(f"{method.upper()} {path}: {longest:,}")
    assert not unbounded, unbounded
    assert not too_long, too_long
