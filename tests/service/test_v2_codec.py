"""Conformance tests of the Open Inference Protocol v2 codec, written from the specs.

Sources: KServe ``open_inference_rest.yaml`` (request/response objects, ``{"error": ...}``) and
Triton's ``extension_binary_data.md`` (binary layout, ``Inference-Header-Content-Length``,
``binary_data_size``, ``binary_data``, ``binary_data_output``). Where ``tritonclient[http]`` is
installed, request bodies are built by its own request builder and responses are read back by its
own ``InferResult``: the strongest evidence that real clients interoperate. Without it those tests
skip, and the hand-built cases still cover the same layout.
"""

from __future__ import annotations

import copy
import gzip
import json
import random
import struct
import zlib
from typing import Any

import numpy as np
import pytest

from service.manifest import Manifest
from service.scores import QUANTILE_LEVELS, ScoreName
from service.v2 import codec
from service.v2.codec import (
    BINARY_MEDIA_TYPE,
    HEADER_LENGTH_HEADER,
    JSON_MEDIA_TYPE,
    InferRequest,
    InputContract,
    RequestedOutput,
    encode_infer_response,
    parse_infer_request,
    serialize_bytes,
)
from service.v2.errors import V2Error
from service.v2.schemas import OUTPUTS, model_metadata, server_metadata

ITEM = (3, 4, 4)
ITEM_SIZE = 3 * 4 * 4
CONTRACT = InputContract(name="input", item_shape=ITEM, max_items=8)


def batch(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, *ITEM)).astype(np.float32)


def json_body(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def input_doc(shape: list[Any], data: Any = None, **params: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": "input", "shape": shape, "datatype": "FP32"}
    if data is not None:
        doc["data"] = data
    if params:
        doc["parameters"] = params
    return doc


def binary_request(
    array: np.ndarray, shape: list[int] | None = None, pad: int = 0, **extra: Any
) -> tuple[bytes, dict[str, str]]:
    """Hand-built binary request as the Triton extension describes it."""
    raw = array.astype("<f4").tobytes()
    doc = {
        "inputs": [input_doc(shape or list(array.shape), binary_data_size=len(raw))],
        **extra,
    }
    header = json_body(doc) + b" " * pad
    return header + raw, {HEADER_LENGTH_HEADER: str(len(header))}


def parse(body: bytes, headers: dict[str, str] | None = None) -> InferRequest:
    return parse_infer_request(body, headers or {}, CONTRACT)


def expect_400(body: bytes, headers: dict[str, str] | None = None, match: str = "") -> V2Error:
    with pytest.raises(V2Error) as info:
        parse(body, headers)
    assert info.value.status == 400
    assert match.lower() in info.value.message.lower(), info.value.message
    assert info.value.body() == {"error": info.value.message}
    return info.value


# --- requests -------------------------------------------------------------------------------------


def test_json_flat_data() -> None:
    x = batch(2)
    req = parse(json_body({"id": "a1", "inputs": [input_doc([2, *ITEM], x.ravel().tolist())]}))
    assert req.id == "a1"
    assert req.inputs.dtype == np.float32 and req.inputs.shape == (2, *ITEM)
    np.testing.assert_array_equal(req.inputs, x)
    assert req.outputs == tuple(RequestedOutput(name, False) for name in OUTPUTS)
    assert not req.binary_input and req.batch_size == 2


def test_json_nested_data_and_integers() -> None:
    x = batch(3)
    req = parse(json_body({"inputs": [input_doc([3, *ITEM], x.tolist())]}))
    np.testing.assert_array_equal(req.inputs, x)
    ints = np.arange(ITEM_SIZE).reshape(1, *ITEM)
    req = parse(json_body({"inputs": [input_doc([1, *ITEM], ints.tolist())]}))
    np.testing.assert_array_equal(req.inputs, ints.astype(np.float32))


def test_dynamic_batch_dimension() -> None:
    x = batch(4)
    req = parse(json_body({"inputs": [input_doc([-1, *ITEM], x.ravel().tolist())]}))
    assert req.inputs.shape == (4, *ITEM)
    body, headers = binary_request(x, shape=[-1, *ITEM])
    assert parse(body, headers).inputs.shape == (4, *ITEM)


def test_binary_request_handbuilt() -> None:
    x = batch(5)
    body, headers = binary_request(x, parameters={"binary_data_output": True})
    req = parse(body, headers)
    assert req.binary_input
    np.testing.assert_array_equal(req.inputs, x)
    assert all(output.binary for output in req.outputs)


def test_header_name_is_case_insensitive() -> None:
    x = batch(1)
    body, headers = binary_request(x)
    lower = {k.lower(): v for k, v in headers.items()}
    np.testing.assert_array_equal(parse(body, lower).inputs, x)
    upper = {k.upper(): v for k, v in headers.items()}
    np.testing.assert_array_equal(parse(body, upper).inputs, x)


def test_binary_decode_is_zero_copy_when_aligned_and_copies_otherwise() -> None:
    x = batch(2)
    views = []
    for pad in range(4):  # every alignment of the tensor bytes inside the body
        body, headers = binary_request(x, pad=pad)
        req = parse(body, headers)
        np.testing.assert_array_equal(req.inputs, x)
        assert req.inputs.flags.c_contiguous and req.inputs.flags.aligned
        shared = np.shares_memory(req.inputs, np.frombuffer(body, dtype=np.uint8))
        if shared:
            assert not req.inputs.flags.writeable  # a view of the immutable body
        views.append(shared)
    assert any(views)  # the 4-byte aligned placement is decoded without a copy


def test_output_selection_order_and_binary_flags() -> None:
    x = batch(1)
    body, headers = binary_request(
        x,
        outputs=[
            {"name": "is_ood", "parameters": {"binary_data": True}},
            {"name": "msp"},
            {"name": "label", "parameters": {"binary_data": False}},
        ],
        parameters={"binary_data_output": True},
    )
    req = parse(body, headers)
    # binary_data on an output overrides binary_data_output; an output without it inherits it
    assert req.outputs == (
        RequestedOutput("is_ood", True),
        RequestedOutput("msp", True),
        RequestedOutput("label", False),
    )


def test_request_parameters() -> None:
    x = batch(1).ravel().tolist()
    doc = {
        "inputs": [input_doc([1, *ITEM], x)],
        "parameters": {"score": "energy", "target_tpr": 0.9, "timeout": 250000, "priority": 1},
    }
    req = parse(json_body(doc))
    assert req.score is ScoreName.ENERGY and req.target_tpr == 0.9 and req.threshold is None
    assert req.timeout_s == pytest.approx(0.25)
    doc["parameters"] = {"score": "max_logit", "threshold": -3}
    req = parse(json_body(doc))
    assert req.threshold == -3.0 and isinstance(req.threshold, float)
    doc["parameters"] = {"timeout": 0}
    assert parse(json_body(doc)).timeout_s is None


def test_compressed_request_bodies() -> None:
    x = batch(2)
    body, headers = binary_request(x)
    # the header length counts the JSON inside the inflated body, as tritonclient sends it
    for encoding, packed in (("gzip", gzip.compress(body)), ("deflate", zlib.compress(body))):
        req = parse(packed, {**headers, "Content-Encoding": encoding})
        np.testing.assert_array_equal(req.inputs, x)
    expect_400(b"not gzip", {"Content-Encoding": "gzip"}, "not valid gzip")
    expect_400(body, {"Content-Encoding": "br"}, "unsupported content-encoding")
    expect_400(gzip.compress(body)[:-12], {**headers, "Content-Encoding": "gzip"}, "gzip")
    small = InputContract("input", ITEM, 8, max_body_bytes=100)
    with pytest.raises(V2Error, match="exceeds"):
        parse_infer_request(gzip.compress(body), {"Content-Encoding": "gzip"}, small)


# --- request errors: every bad input is a 400 with a message ----------------------------------

GOOD = batch(2)
GOOD_FLAT = GOOD.ravel().tolist()


def doc_with(**changes: Any) -> bytes:
    inp = input_doc([2, *ITEM], GOOD_FLAT)
    inp.update(changes)
    return json_body({"inputs": [inp]})


def with_params(**params: Any) -> bytes:
    return json_body({"inputs": [input_doc([2, *ITEM], GOOD_FLAT)], "parameters": params})


def with_outputs(outputs: Any) -> bytes:
    return json_body({"inputs": [input_doc([2, *ITEM], GOOD_FLAT)], "outputs": outputs})


def bad_binary(size: Any, extra: bytes = b"", shape: list[int] | None = None) -> tuple[bytes, dict]:
    header = json_body({"inputs": [input_doc(shape or [2, *ITEM], binary_data_size=size)]})
    payload = GOOD.tobytes()
    if isinstance(size, int) and not isinstance(size, bool) and 0 <= size < len(payload):
        payload = payload[:size]  # the body agrees with the declared size: only it is wrong
    body = header + payload + extra
    return body, {HEADER_LENGTH_HEADER: str(len(header))}


def with_token(token: bytes) -> bytes:
    """A valid JSON request whose last data value is replaced by raw JSON text."""
    return doc_with().replace(str(GOOD_FLAT[-1]).encode(), token, 1)


def with_param_token(name: str, token: bytes) -> bytes:
    return with_params(**{name: 12345.5}).replace(b"12345.5", token)


JSON_ERRORS: list[tuple[str, bytes, str]] = [
    ("fp64 datatype", doc_with(datatype="FP64"), "datatype"),
    ("bytes datatype", doc_with(datatype="BYTES"), "datatype"),
    ("lowercase datatype", doc_with(datatype="fp32"), "datatype"),
    ("rank 3", doc_with(shape=[2, 3, 16]), "rank"),
    ("rank 5", doc_with(shape=[1, 2, *ITEM]), "rank"),
    ("wrong item shape", doc_with(shape=[2, 3, 2, 8]), "shape"),
    ("channels last", doc_with(shape=[2, 4, 4, 3]), "shape"),
    ("float in shape", doc_with(shape=[2.0, *ITEM]), "shape"),
    ("bool in shape", doc_with(shape=[True, *ITEM]), "shape"),
    ("string in shape", doc_with(shape=["2", *ITEM]), "shape"),
    ("negative batch", doc_with(shape=[-2, *ITEM]), "negative"),
    ("count mismatch", doc_with(shape=[3, *ITEM]), "needs"),
    ("too few values", doc_with(data=GOOD_FLAT[:-1]), "needs"),
    ("dynamic not multiple", doc_with(shape=[-1, *ITEM], data=GOOD_FLAT[:-1]), "multiple"),
    ("empty batch", doc_with(shape=[0, *ITEM], data=[]), "empty batch"),
    ("empty dynamic batch", doc_with(shape=[-1, *ITEM], data=[]), "empty batch"),
    ("too many items", doc_with(shape=[9, *ITEM], data=[0.0] * 9 * ITEM_SIZE), "limit"),
    ("too many dynamic", doc_with(shape=[-1, *ITEM], data=[0.0] * 9 * ITEM_SIZE), "limit"),
    ("strings", doc_with(data=["1.0"] * 2 * ITEM_SIZE), "strings"),
    ("one string", doc_with(data=[*GOOD_FLAT[:-1], "1"]), "numbers"),
    ("booleans", doc_with(data=[True] * 2 * ITEM_SIZE), "booleans"),
    ("one boolean", doc_with(data=[*GOOD_FLAT[:-1], True]), "booleans"),
    (
        "nested boolean",
        doc_with(data=[*GOOD.tolist()[:-1], [[[1] * 4] * 4] * 2 + [[[0, 0, 0, False]] * 4]]),
        "booleans",
    ),
    ("null", doc_with(data=[*GOOD_FLAT[:-1], None]), "numbers"),
    ("object", doc_with(data=[*GOOD_FLAT[:-1], {"a": 1}]), "numbers"),
    ("ragged", doc_with(data=[[1.0, 2.0], [3.0]]), "nested"),
    ("data not a list", doc_with(data=1.0), "array"),
    ("data string", doc_with(data="1,2,3"), "array"),
    ("no data", doc_with(data=None), "neither"),
    ("overflow to inf in float32", doc_with(data=[*GOOD_FLAT[:-1], 1e39]), "infinite"),
    ("inf in float64", with_token(b"1e400"), "infinite"),
    ("-inf in float64", with_token(b"-1e400"), "infinite"),
    ("huge integer", doc_with(data=[*GOOD_FLAT[:-1], 10**30]), "numbers"),
    ("NaN literal", with_token(b"NaN"), "not valid json"),
    ("Infinity literal", with_token(b"-Infinity"), "not valid json"),
    ("hex number", with_token(b"0x10"), "not valid json"),
    ("integer too long to parse", with_token(b"9" * 5000), "not valid json"),
    ("unknown input", doc_with(name="x"), "unknown input"),
    ("unknown input parameter", doc_with(parameters={"foo": 1}), "unknown parameter"),
    ("shared memory input", doc_with(parameters={"shared_memory_region": "r"}), "shared-memory"),
    ("two inputs", json_body({"inputs": [input_doc([2, *ITEM], GOOD_FLAT)] * 2}), "exactly one"),
    ("no inputs", json_body({"inputs": []}), "inputs"),
    ("missing inputs", json_body({"id": "x"}), "inputs"),
    ("inputs not a list", json_body({"inputs": {"name": "input"}}), "inputs"),
    ("extra top-level field", json_body({"inputs": [], "model_name": "m"}), "model_name"),
    ("id not a string", json_body({"id": 5, "inputs": []}), "id"),
    ("unknown output", with_outputs([{"name": "softmax"}]), "unknown output"),
    ("duplicate output", with_outputs([{"name": "msp"}, {"name": "msp"}]), "twice"),
    ("empty outputs", with_outputs([]), "empty"),
    (
        "binary_data string",
        with_outputs([{"name": "msp", "parameters": {"binary_data": "yes"}}]),
        "boolean",
    ),
    (
        "binary_data int",
        with_outputs([{"name": "msp", "parameters": {"binary_data": 1}}]),
        "boolean",
    ),
    (
        "classification",
        with_outputs([{"name": "logits", "parameters": {"classification": 2}}]),
        "classification",
    ),
    (
        "output shm",
        with_outputs([{"name": "msp", "parameters": {"shared_memory_region": "r"}}]),
        "shared-memory",
    ),
    (
        "unknown output param",
        with_outputs([{"name": "msp", "parameters": {"x": 1}}]),
        "unknown parameter",
    ),
    ("nested parameter", with_params(score={"name": "msp"}), "parameters"),
    ("unknown score", with_params(score="odin"), "score"),
    ("score not string", with_params(score=1), "score"),
    ("threshold string", with_params(threshold="0.5"), "threshold"),
    ("threshold bool", with_params(threshold=True), "threshold"),
    ("threshold inf", with_param_token("threshold", b"1e400"), "threshold"),
    ("threshold NaN", with_param_token("threshold", b"NaN"), "not valid json"),
    ("threshold beyond float", with_params(threshold=10**400), "threshold"),
    ("target_tpr beyond float", with_params(target_tpr=-(10**400)), "target_tpr"),
    ("timeout beyond float", with_params(timeout=10**400), "timeout"),
    ("priority beyond float", with_params(priority=10**400), "priority"),
    ("target_tpr zero", with_params(target_tpr=0), "target_tpr"),
    ("target_tpr above one", with_params(target_tpr=1.5), "target_tpr"),
    ("target_tpr bool", with_params(target_tpr=True), "target_tpr"),
    ("both thresholds", with_params(threshold=0.5, target_tpr=0.9), "not both"),
    ("negative timeout", with_params(timeout=-1), "timeout"),
    ("timeout string", with_params(timeout="1s"), "timeout"),
    ("binary_data_output int", with_params(binary_data_output=1), "binary_data_output"),
    ("unknown request parameter", with_params(sequence_id=3), "unknown request parameter"),
    ("typo parameter", with_params(scroe="msp"), "unknown request parameter"),
    ("not an object", b"[1, 2, 3]", "json object"),
    ("string body", b'"hello"', "json object"),
    ("empty body", b"", "empty"),
    ("invalid json", b'{"inputs": [', "not valid json"),
    ("trailing garbage", doc_with() + b"}", "not valid json"),
    ("invalid utf-8", b'{"id": "\xff\xfe", "inputs": []}', "utf-8"),
    ("utf-16 body", json.dumps({"inputs": []}).encode("utf-16"), "utf-8"),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, "nesting"),
    ("deep objects", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "nesting"),
    ("deep data", doc_with(data=json.loads("[" * 40 + "1" + "]" * 40)), "nesting"),
]


@pytest.mark.parametrize(("body", "match"), [(b, m) for _, b, m in JSON_ERRORS],
                         ids=[name for name, _, _ in JSON_ERRORS])  # fmt: skip
def test_json_request_errors(body: bytes, match: str) -> None:
    expect_400(body, match=match)


def test_deep_data_below_limit_is_a_shape_error_not_a_crash() -> None:
    data = json.loads("[" * 20 + "1" + "]" * 20)
    expect_400(doc_with(data=data), match="")


BINARY_ERRORS: list[tuple[str, Any, str]] = [
    ("size too large", bad_binary(GOOD.nbytes + 4), "sums to"),
    ("size too small", bad_binary(GOOD.nbytes - 4), "does not match"),
    ("extra bytes", bad_binary(GOOD.nbytes, extra=b"\0\0\0\0"), "follow the json"),
    ("negative size", bad_binary(-GOOD.nbytes), "non-negative integer"),
    ("float size", bad_binary(float(GOOD.nbytes)), "non-negative integer"),
    ("string size", bad_binary(str(GOOD.nbytes)), "non-negative integer"),
    ("bool size", bad_binary(True), "non-negative integer"),
    ("size vs shape", bad_binary(GOOD.nbytes, shape=[3, *ITEM]), "does not match"),
    ("partial item", bad_binary(GOOD.nbytes - 4, shape=[-1, *ITEM]), "whole number"),
    ("too many items", bad_binary(GOOD.nbytes, shape=[9, *ITEM]), "limit"),
]


@pytest.mark.parametrize(("case", "match"), [(c, m) for _, c, m in BINARY_ERRORS],
                         ids=[name for name, _, _ in BINARY_ERRORS])  # fmt: skip
def test_binary_request_errors(case: tuple[bytes, dict[str, str]], match: str) -> None:
    body, headers = case
    expect_400(body, headers, match)


def test_binary_framing_errors() -> None:
    body, headers = binary_request(GOOD)
    length = int(headers[HEADER_LENGTH_HEADER])
    expect_400(body, {HEADER_LENGTH_HEADER: str(len(body) + 1)}, "only")
    expect_400(body, {HEADER_LENGTH_HEADER: "-5"}, "non-negative integer")
    expect_400(body, {HEADER_LENGTH_HEADER: "12a"}, "non-negative integer")
    expect_400(body, {HEADER_LENGTH_HEADER: "1e3"}, "non-negative integer")
    expect_400(body, {HEADER_LENGTH_HEADER: "٣"}, "non-negative integer")  # a non-ASCII digit
    expect_400(body, {HEADER_LENGTH_HEADER: "0"}, "missing")
    expect_400(body, {HEADER_LENGTH_HEADER: "9" * 5000}, "non-negative integer")  # > int() limit
    expect_400(body, {HEADER_LENGTH_HEADER: ""}, "non-negative integer")
    expect_400(body, {HEADER_LENGTH_HEADER: str(length - 1)}, "not valid json")
    expect_400(body, {HEADER_LENGTH_HEADER: str(length + 1)}, "")
    expect_400(body, {}, "request header is not valid")  # binary bytes parsed as JSON
    expect_400(body[:-1], headers, "sums to")  # truncated tensor bytes
    expect_400(body[:length], headers, "sums to")  # no tensor bytes at all
    # binary_data_size on a JSON-only body (no header) and both data and binary
    header = json_body({"inputs": [input_doc([2, *ITEM], binary_data_size=GOOD.nbytes)]})
    expect_400(header, {}, HEADER_LENGTH_HEADER)
    both = json_body({"inputs": [input_doc([2, *ITEM], GOOD_FLAT, binary_data_size=GOOD.nbytes)]})
    expect_400(both + GOOD.tobytes(), {HEADER_LENGTH_HEADER: str(len(both))}, "both")
    # bytes after a JSON-data request
    plain = doc_with()
    expect_400(plain + b"xx", {HEADER_LENGTH_HEADER: str(len(plain))}, "no input has")


def test_binary_non_finite_values() -> None:
    for bad in (np.nan, np.inf, -np.inf):
        x = GOOD.copy()
        x[1, 2, 3, 0] = bad
        body, headers = binary_request(x)
        expect_400(body, headers, "nan or infinite")


def test_mutated_requests_never_raise_anything_but_400() -> None:
    """Random byte flips, truncations and header lengths: the codec answers 400 or succeeds."""
    rng = random.Random(1234)
    seeds = [binary_request(GOOD), (doc_with(), {}), (json_body({"inputs": [input_doc(
        [2, *ITEM], GOOD.tolist())], "outputs": [{"name": "msp"}]}), {})]  # fmt: skip
    for _ in range(1500):
        body, headers = rng.choice(seeds)
        data = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            if op < 0.5 and data:
                data[rng.randrange(len(data))] = rng.choice(b'[]{}",:-.0123456789eE \xff\x00tfn')
            elif op < 0.75:
                del data[rng.randrange(len(data) + 1) :]
            else:
                pos = rng.randrange(len(data) + 1)
                data[pos:pos] = rng.choice([b"[", b"]", b"{", b"-1", b"1e99", b'"', b"NaN"])
        mutated_headers = dict(headers)
        if headers and rng.random() < 0.3:
            mutated_headers[HEADER_LENGTH_HEADER] = str(rng.randint(-2, len(data) + 2))
        elif rng.random() < 0.05:
            mutated_headers[HEADER_LENGTH_HEADER] = rng.choice(["", " ", "x", "9" * 30, "+4"])
        if rng.random() < 0.03:
            mutated_headers["Content-Encoding"] = rng.choice(["gzip", "deflate", "zstd", ""])
        try:
            req = parse_infer_request(bytes(data), mutated_headers, CONTRACT)
        except V2Error as exc:
            assert exc.status == 400
        else:
            assert req.inputs.dtype == np.float32 and np.isfinite(req.inputs).all()


JUNK: list[Any] = [None, True, False, 0, -1, 1.5, 1e308, 10**30, "", "x", "FP32", [], {}, [[1]]]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key/index path into a JSON document, except inside the big ``data`` array."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key)) if key != "data" else [(*prefix, key)]
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def test_type_confused_requests_never_raise_anything_but_400() -> None:
    """Any field replaced by a value of another JSON type, or deleted: 400 or success."""
    base = {
        "id": "x",
        "parameters": {"score": "msp", "threshold": 0.5, "timeout": 10, "binary_data_output": True},
        "inputs": [input_doc([2, *ITEM], GOOD.tolist(), content_type="np")],
        "outputs": [{"name": "msp", "parameters": {"binary_data": False}}, {"name": "label"}],
    }
    rng = random.Random(99)
    paths = [p for p in _paths(base) if p]
    for _ in range(1500):
        doc = json.loads(json.dumps(base))
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(paths)
            parent = doc
            try:
                for key in path[:-1]:
                    parent = parent[key]
                if rng.random() < 0.2 and isinstance(parent, dict):
                    parent.pop(path[-1], None)
                else:
                    parent[path[-1]] = copy.deepcopy(rng.choice(JUNK))
            except (KeyError, IndexError, TypeError):
                continue
        try:
            parse(json_body(doc))
        except V2Error as exc:
            assert exc.status == 400


# --- responses ------------------------------------------------------------------------------------

SPECIAL = np.array(
    [0.1, -0.0, 0.0, 1e-45, 1.1754942e-38, 3.4028235e38, -3.4028235e38, 1 / 3, 16777217.0],
    dtype=np.float32,
)


def service_outputs(n: int, k: int = 4) -> dict[str, Any]:
    rng = np.random.default_rng(n)
    logits = rng.standard_normal((n, k)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return {
        "logits": logits,
        "probabilities": probs,
        "label": [["cat", "dög", "", "🐱"][i % 4] for i in range(n)],
        "class_index": logits.argmax(axis=1),
        "msp": probs.max(axis=1).astype(np.float64),  # float64 in the service: sent as FP32
        "energy": -np.log(np.exp(logits).sum(axis=1)),
        "max_logit": logits.max(axis=1),
        "is_ood": np.arange(n) % 2 == 0,
    }


def request_for(outputs: list[tuple[str, bool]], request_id: str | None = "req-7") -> InferRequest:
    return InferRequest(
        id=request_id,
        inputs=batch(1),
        outputs=tuple(RequestedOutput(name, binary) for name, binary in outputs),
    )


def split(body: bytes, headers: dict[str, str]) -> tuple[dict[str, Any], bytes]:
    length = int(headers[HEADER_LENGTH_HEADER])
    return json.loads(body[:length]), body[length:]


def test_json_response_shape_and_values() -> None:
    tensors = service_outputs(3)
    req = request_for([(name, False) for name in OUTPUTS])
    encoded = encode_infer_response(
        req, tensors, model_name="m", model_version="2", parameters={"threshold": 0.5}
    )
    assert encoded.media_type == JSON_MEDIA_TYPE and encoded.headers == {}
    doc = json.loads(encoded.body)
    assert doc["model_name"] == "m" and doc["model_version"] == "2" and doc["id"] == "req-7"
    assert doc["parameters"] == {"threshold": 0.5}
    by_name = {o["name"]: o for o in doc["outputs"]}
    assert [o["name"] for o in doc["outputs"]] == list(OUTPUTS)
    assert by_name["logits"]["shape"] == [3, 4] and by_name["logits"]["datatype"] == "FP32"
    assert by_name["label"] == {
        "name": "label",
        "datatype": "BYTES",
        "shape": [3],
        "data": ["cat", "dög", ""],
    }
    assert by_name["class_index"]["datatype"] == "INT64"
    assert by_name["is_ood"]["data"] == [True, False, True]
    assert by_name["msp"]["datatype"] == "FP32" and by_name["msp"]["shape"] == [3]
    for name in ("logits", "probabilities", "msp", "energy", "max_logit"):
        sent = np.array(by_name[name]["data"], dtype=np.float32).reshape(by_name[name]["shape"])
        np.testing.assert_array_equal(sent, np.asarray(tensors[name], dtype=np.float32))


def test_fp32_round_trip_is_byte_exact_in_json_and_binary() -> None:
    tensors = {"msp": SPECIAL}
    for binary in (False, True):
        encoded = encode_infer_response(
            request_for([("msp", binary)]), tensors, model_name="m", model_version=None
        )
        if binary:
            doc, tail = split(encoded.body, encoded.headers)
            back = np.frombuffer(tail, dtype="<f4")
        else:
            doc = json.loads(encoded.body)
            back = np.array(doc["outputs"][0]["data"], dtype=np.float32)
        assert "model_version" not in doc
        assert back.tobytes() == SPECIAL.tobytes()  # -0.0 and the denormal keep their bits


def test_request_fp32_round_trip_is_byte_exact() -> None:
    x = np.resize(SPECIAL, 2 * ITEM_SIZE).reshape(2, *ITEM)
    req = parse(json_body({"inputs": [input_doc([2, *ITEM], x.ravel().tolist())]}))
    assert req.inputs.tobytes() == x.tobytes()
    body, headers = binary_request(x)
    assert parse(body, headers).inputs.tobytes() == x.tobytes()


def test_mixed_binary_and_json_outputs() -> None:
    tensors = service_outputs(4)
    req = request_for(
        [
            ("label", True),
            ("msp", False),
            ("logits", True),
            ("is_ood", True),
            ("class_index", False),
        ]
    )
    encoded = encode_infer_response(req, tensors, model_name="m", model_version="1")
    assert encoded.media_type == BINARY_MEDIA_TYPE
    doc, tail = split(encoded.body, encoded.headers)
    outputs = doc["outputs"]
    assert [o["name"] for o in outputs] == ["label", "msp", "logits", "is_ood", "class_index"]
    assert "data" in outputs[1] and "data" in outputs[4]
    sizes = [o["parameters"]["binary_data_size"] for o in outputs if "parameters" in o]
    assert sum(sizes) == len(tail)
    label_bytes = serialize_bytes(tensors["label"])
    assert tail[: sizes[0]] == label_bytes
    logits = np.frombuffer(tail[sizes[0] : sizes[0] + sizes[1]], dtype="<f4").reshape(4, 4)
    np.testing.assert_array_equal(logits, tensors["logits"])
    is_ood = tail[sizes[0] + sizes[1] :]
    assert is_ood == bytes([1, 0, 1, 0])  # BOOL: one byte per element, 1 or 0


def test_bytes_encoding_matches_triton_deserialize() -> None:
    strings = ["cat", "", "dög", "🐱" * 3]
    raw = serialize_bytes(strings)
    # tritonclient.utils.deserialize_bytes_tensor, re-implemented from its source
    out, offset = [], 0
    while offset < len(raw):
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        out.append(raw[offset : offset + length])
        offset += length
    assert [b.decode() for b in out] == strings


def test_non_finite_json_output_is_a_server_error_but_binary_carries_it() -> None:
    tensors = {"energy": np.array([np.inf, 1.0])}
    with pytest.raises(V2Error) as info:
        encode_infer_response(
            request_for([("energy", False)]), tensors, model_name="m", model_version="1"
        )
    assert info.value.status == 500
    encoded = encode_infer_response(
        request_for([("energy", True)]), tensors, model_name="m", model_version="1"
    )
    _, tail = split(encoded.body, encoded.headers)
    assert np.isinf(np.frombuffer(tail, "<f4")[0])


def test_request_id_is_omitted_when_absent() -> None:
    encoded = encode_infer_response(
        request_for([("msp", False)], request_id=None),
        {"msp": np.ones(1)},
        model_name="m",
        model_version="1",
    )
    assert "id" not in json.loads(encoded.body)


# --- tritonclient: real client request bodies and response parsing ---------------------------


@pytest.fixture(scope="module")
def triton() -> Any:
    return pytest.importorskip("tritonclient.http")


def triton_request(
    triton: Any,
    x: np.ndarray,
    *,
    binary_input: bool = True,
    outputs: list[tuple[str, bool]] | None = None,
    shape: list[int] | None = None,
    **kwargs: Any,
) -> tuple[bytes, dict[str, str]]:
    """The body and headers ``InferenceServerClient.infer`` would send."""
    from tritonclient.http._utils import _get_inference_request

    tensor = triton.InferInput("input", shape or list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary_input)
    requested = [triton.InferRequestedOutput(n, binary_data=b) for n, b in outputs or []]
    body, json_size = _get_inference_request(
        inputs=[tensor],
        request_id=kwargs.pop("request_id", ""),
        outputs=requested or None,
        sequence_id=0,
        sequence_start=False,
        sequence_end=False,
        priority=kwargs.pop("priority", 0),
        timeout=kwargs.pop("timeout", None),
        custom_parameters=kwargs.pop("parameters", None),
    )
    assert not kwargs
    headers = {} if json_size is None else {HEADER_LENGTH_HEADER: str(json_size)}
    return body, headers


def triton_result(triton: Any, encoded: codec.EncodedResponse) -> Any:
    length = encoded.headers.get(HEADER_LENGTH_HEADER)
    return triton.InferResult.from_response_body(
        encoded.body, header_length=None if length is None else int(length)
    )


def test_tritonclient_binary_request(triton: Any) -> None:
    x = batch(6)
    body, headers = triton_request(
        triton,
        x,
        outputs=[("msp", True), ("label", False)],
        request_id="r1",
        timeout=1000,
        priority=2,
        parameters={"score": "energy", "target_tpr": 0.95},
    )
    assert HEADER_LENGTH_HEADER in headers
    req = parse(body, headers)
    np.testing.assert_array_equal(req.inputs, x)
    assert req.id == "r1" and req.binary_input
    assert req.outputs == (RequestedOutput("msp", True), RequestedOutput("label", False))
    assert req.score is ScoreName.ENERGY and req.target_tpr == 0.95
    assert req.timeout_s == pytest.approx(0.001)


def test_tritonclient_json_request(triton: Any) -> None:
    x = batch(2)
    body, headers = triton_request(triton, x, binary_input=False, outputs=[("logits", False)])
    assert headers == {}
    req = parse(body, headers)
    np.testing.assert_array_equal(req.inputs, x)
    assert not req.binary_input and req.outputs == (RequestedOutput("logits", False),)


def test_tritonclient_no_outputs_means_all_binary(triton: Any) -> None:
    body, headers = triton_request(triton, batch(1))
    req = parse(body, headers)
    assert req.outputs == tuple(RequestedOutput(name, True) for name in OUTPUTS)


def test_tritonclient_compressed_request(triton: Any) -> None:
    x = batch(3)
    body, headers = triton_request(triton, x, outputs=[("msp", True)])
    req = parse(gzip.compress(body), {**headers, "Content-Encoding": "gzip"})
    np.testing.assert_array_equal(req.inputs, x)


def test_tritonclient_reads_every_output(triton: Any) -> None:
    tensors = service_outputs(5)
    for binary in (True, False):
        req = request_for([(name, binary) for name in OUTPUTS])
        result = triton_result(
            triton, encode_infer_response(req, tensors, model_name="m", model_version="1")
        )
        for name in ("logits", "probabilities", "msp", "energy", "max_logit"):
            got = result.as_numpy(name)
            assert got.dtype == np.float32
            assert got.tobytes() == np.asarray(tensors[name], dtype=np.float32).tobytes()
        np.testing.assert_array_equal(result.as_numpy("class_index"), tensors["class_index"])
        assert result.as_numpy("class_index").dtype == np.int64
        np.testing.assert_array_equal(result.as_numpy("is_ood"), tensors["is_ood"])
        labels = result.as_numpy("label")
        decoded = [v.decode() if isinstance(v, bytes) else v for v in labels]
        assert decoded == tensors["label"]
        assert result.get_response()["id"] == "req-7"


def test_tritonclient_reads_mixed_outputs_and_special_values(triton: Any) -> None:
    tensors = {**service_outputs(len(SPECIAL)), "max_logit": SPECIAL}
    req = request_for([("is_ood", True), ("max_logit", False), ("label", True), ("msp", True)])
    result = triton_result(
        triton, encode_infer_response(req, tensors, model_name="m", model_version="1")
    )
    assert result.as_numpy("max_logit").tobytes() == SPECIAL.tobytes()
    np.testing.assert_array_equal(result.as_numpy("is_ood"), tensors["is_ood"])
    assert [b.decode() for b in result.as_numpy("label")] == tensors["label"]
    np.testing.assert_array_equal(
        result.as_numpy("msp"), np.asarray(tensors["msp"], dtype=np.float32)
    )


def test_tritonclient_deserializes_our_bytes(triton: Any) -> None:
    from tritonclient.utils import deserialize_bytes_tensor

    strings = ["cat", "", "dög", "🐱"]
    got = deserialize_bytes_tensor(serialize_bytes(strings))
    assert [b.decode() for b in got] == strings


# --- errors and metadata --------------------------------------------------------------------------


def test_v2_error_body_and_truncation() -> None:
    err = V2Error(404, "unknown model 'x'")
    assert err.body() == {"error": "unknown model 'x'"}
    assert json.loads(err.body_bytes()) == {"error": "unknown model 'x'"}
    long = V2Error(400, "x" * 5000)
    assert len(long.message) <= 1000


def make_manifest(classes: int = 4) -> Manifest:
    quantiles = [float(q) for q in QUANTILE_LEVELS]
    directions = {"msp": "higher_is_in", "energy": "lower_is_in", "max_logit": "higher_is_in"}
    return Manifest.model_validate(
        {
            "name": "tiny",
            "version": "3",
            "created_at": "2026-01-01T00:00:00Z",
            "classes": [f"c{i}" for i in range(classes)],
            "input": {"name": "input", "shape": [3, 4, 4]},
            "output": {"name": "logits", "num_classes": classes},
            "preprocessing": {
                "color_mode": "rgb",
                "height": 4,
                "width": 4,
                "mean": [0.5, 0.5, 0.5],
                "std": [0.25, 0.25, 0.25],
            },
            "training": {
                "loss": "logitnorm",
                "tau": 0.04,
                "architecture": "tiny",
                "dataset": "synthetic",
                "seed": 0,
                "epochs": 1,
            },
            "calibration": {
                "num_samples": 10,
                "scores": {
                    name: {
                        "direction": direction,
                        "target_tpr": 0.95,
                        "threshold": 0.5,
                        "quantiles": quantiles,
                    }
                    for name, direction in directions.items()
                },
            },
            "onnx": {"sha256": "0" * 64, "size_bytes": 1, "opset": 17},
        }
    )


def test_model_metadata_from_manifest() -> None:
    meta = model_metadata(make_manifest(), versions=["1", "3"]).model_dump()
    assert meta["name"] == "tiny" and meta["versions"] == ["1", "3"]
    assert meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 3, 4, 4]}]
    outputs = {o["name"]: o for o in meta["outputs"]}
    assert list(outputs) == list(OUTPUTS)
    assert outputs["logits"] == {"name": "logits", "datatype": "FP32", "shape": [-1, 4]}
    assert outputs["label"]["datatype"] == "BYTES" and outputs["label"]["shape"] == [-1]
    assert outputs["is_ood"]["datatype"] == "BOOL"
    assert model_metadata(make_manifest()).versions == ["3"]


def test_contract_from_manifest() -> None:
    contract = InputContract.from_manifest(make_manifest(), max_items=16)
    assert contract == InputContract("input", (3, 4, 4), 16)
    assert contract.item_size == 48


def test_server_metadata() -> None:
    meta = server_metadata("ood-scoring-service", "0.1.0").model_dump()
    assert meta == {
        "name": "ood-scoring-service",
        "version": "0.1.0",
        "extensions": ["binary_tensor_data"],
    }
