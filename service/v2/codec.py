"""Open Inference Protocol v2 (REST) codec with Triton's binary tensor data extension.

Pure functions, no web framework: :func:`parse_infer_request` turns a request body and its headers
into an :class:`InferRequest` holding a ``float32`` numpy array; :func:`encode_infer_response`
turns output arrays into a response body and headers. Every malformed request raises
:class:`~service.v2.errors.V2Error` with status 400; nothing else escapes for bad input.

Wire format (KServe ``open_inference_rest.yaml``; Triton ``extension_binary_data.md``):

* JSON request: the whole body is the ``$inference_request`` object; the input's ``data`` is a
  flat or nested array of numbers in row-major order.
* Binary request: the body is the JSON object, whose byte length is given by the
  ``Inference-Header-Content-Length`` header, followed by the raw tensors, little-endian,
  row-major, no padding, in the order of the inputs that carry ``parameters.binary_data_size``.
  This is what ``tritonclient.http`` sends by default (``set_data_from_numpy(binary_data=True)``).
* Outputs are binary when the requested output has ``parameters.binary_data: true``, or when the
  request has ``parameters.binary_data_output: true`` and the output does not say otherwise.
  Binary outputs list ``parameters.binary_data_size`` in the JSON and their bytes follow it in
  output order; the response then carries ``Inference-Header-Content-Length`` and is sent as
  ``application/octet-stream``. ``BOOL`` is one byte per element (0 or 1), ``BYTES`` is each
  element's 4-byte little-endian length followed by its UTF-8 bytes.
* ``Content-Encoding: gzip`` or ``deflate`` request bodies (``tritonclient``'s
  ``request_compression_algorithm``) are inflated up to a size limit.

Request ``parameters`` understood: ``score`` (``msp`` | ``energy`` | ``max_logit``),
``threshold`` (finite number), ``target_tpr`` (in (0, 1]; not with ``threshold``), ``timeout``
(microseconds, as Triton and ``tritonclient`` use; 0 means none), ``binary_data_output`` (bool)
and ``priority`` (accepted and ignored). Anything else is a 400, so a typo never silently
falls back to a default.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import ValidationError

from service.manifest import Manifest
from service.scores import ScoreName
from service.v2.errors import V2Error, bad_request
from service.v2.schemas import INPUT_DATATYPE, OUTPUTS, InferenceRequest, RequestInput

HEADER_LENGTH_HEADER: Final = "Inference-Header-Content-Length"
JSON_MEDIA_TYPE: Final = "application/json"
BINARY_MEDIA_TYPE: Final = "application/octet-stream"

#: A valid request nests at most 8 deep (request, inputs, input, 4-D data, ...). Deeper JSON is
#: refused before it is parsed, so no request can drive the parser into deep recursion.
MAX_JSON_DEPTH: Final = 32
#: Default limit on an inflated (gzip/deflate) request body.
DEFAULT_MAX_BODY_BYTES: Final = 64 * 1024 * 1024

ScalarParameter = bool | int | float | str

_REQUEST_PARAMETERS: Final = frozenset(
    {"score", "threshold", "target_tpr", "timeout", "binary_data_output", "priority"}
)
_INPUT_PARAMETERS_IGNORED: Final = frozenset({"content_type"})
_OUTPUT_PARAMETERS_IGNORED: Final = frozenset({"content_type"})
_BRACKETS: Final = b"[]{}"
_NOT_BRACKETS: Final = bytes(c for c in range(256) if c not in _BRACKETS)
_FP32_BYTES: Final = 4


@dataclass(frozen=True, slots=True)
class InputContract:
    """What the model accepts: the input name, the shape of one item and the batch limit."""

    name: str
    item_shape: tuple[int, ...]
    max_items: int
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @classmethod
    def from_manifest(
        cls, manifest: Manifest, max_items: int, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    ) -> InputContract:
        return cls(manifest.input.name, tuple(manifest.input.shape), max_items, max_body_bytes)

    @property
    def item_size(self) -> int:
        return math.prod(self.item_shape)


@dataclass(frozen=True, slots=True)
class RequestedOutput:
    """One output to return, and whether as binary data."""

    name: str
    binary: bool


@dataclass(frozen=True, slots=True)
class InferRequest:
    """A validated infer request.

    ``inputs`` is a C-contiguous ``float32`` array of shape ``(n, *item_shape)`` with only finite
    values. Decoded from binary data it is a zero-copy, read-only view of the request body when
    the bytes are aligned (a copy otherwise).
    """

    id: str | None
    inputs: NDArray[np.float32]
    outputs: tuple[RequestedOutput, ...]
    score: ScoreName | None = None
    threshold: float | None = None
    target_tpr: float | None = None
    timeout_s: float | None = None
    binary_input: bool = False

    @property
    def batch_size(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(output.name for output in self.outputs)


@dataclass(frozen=True, slots=True)
class EncodedResponse:
    """A response body with the headers and media type it must be sent with."""

    body: bytes
    headers: dict[str, str]
    media_type: str


# --- request ------------------------------------------------------------------------------------


def parse_infer_request(
    body: bytes, headers: Mapping[str, str], contract: InputContract
) -> InferRequest:
    """Decode and validate an infer request body; raises ``V2Error(400)`` on any problem.

    ``headers`` may be any mapping (a Starlette ``Headers`` or a plain dict); names are matched
    case-insensitively.
    """
    body = _inflate(body, _header(headers, "Content-Encoding"), contract.max_body_bytes)
    header_length = _header_length(_header(headers, HEADER_LENGTH_HEADER), len(body))
    json_part = body if header_length is None else body[:header_length]
    json_end = len(body) if header_length is None else header_length
    request = _validate_structure(_load_json(json_part))

    params = _request_parameters(request.parameters)
    if len(request.inputs) != 1:
        names = ", ".join(repr(i.name) for i in request.inputs)
        raise bad_request(f"expected exactly one input, {contract.name!r}; got {names}")
    tensor = request.inputs[0]
    if tensor.name != contract.name:
        raise bad_request(f"unknown input {tensor.name!r}; the model's input is {contract.name!r}")
    if tensor.datatype != INPUT_DATATYPE:
        raise bad_request(
            f"input {tensor.name!r} has datatype {tensor.datatype!r}; expected {INPUT_DATATYPE!r}"
        )
    binary_size = _binary_data_size(tensor)
    remaining = len(body) - json_end
    declared_batch = _declared_batch(tensor, contract)

    if binary_size is None:
        if remaining:
            raise bad_request(
                f"{remaining} bytes follow the JSON header but no input has binary_data_size"
            )
        array = _decode_json_data(tensor, contract, raw_json=json_part)
    else:
        if tensor.data is not None:
            raise bad_request(f"input {tensor.name!r} has both 'data' and binary_data_size")
        if header_length is None:
            raise bad_request(
                f"input {tensor.name!r} has binary_data_size but the request has no "
                f"{HEADER_LENGTH_HEADER} header"
            )
        if binary_size != remaining:
            raise bad_request(
                f"binary_data_size of the inputs sums to {binary_size} bytes but {remaining} "
                "bytes follow the JSON header"
            )
        if declared_batch is not None:
            needed = declared_batch * contract.item_size * _FP32_BYTES
            if binary_size != needed:
                raise bad_request(
                    f"binary_data_size {binary_size} of input {tensor.name!r} does not match "
                    f"shape {tensor.shape}: FP32 needs {needed} bytes"
                )
        array = _decode_binary(body, json_end, binary_size, tensor.name, contract)

    array = _reshape(array, declared_batch, tensor, contract)
    return InferRequest(
        id=request.id,
        inputs=array,
        outputs=_requested_outputs(request, params.binary_output),
        score=params.score,
        threshold=params.threshold,
        target_tpr=params.target_tpr,
        timeout_s=params.timeout_s,
        binary_input=binary_size is not None,
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def _inflate(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    if encoding is None or encoding.strip().lower() in ("", "identity"):
        return body
    kind = encoding.strip().lower()
    if kind == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    elif kind == "deflate":
        wbits = zlib.MAX_WBITS
    else:
        raise bad_request(f"unsupported Content-Encoding {encoding!r}; use gzip or deflate")
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise bad_request(f"body is not valid {kind} data: {exc}") from None
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise bad_request(f"inflated body exceeds {max_bytes} bytes")
    if not inflater.eof:
        raise bad_request(f"body is truncated {kind} data")
    return out


def _header_length(value: str | None, body_length: int) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise bad_request(f"{HEADER_LENGTH_HEADER} must be a non-negative integer, got {value!r}")
    length = int(text)
    if length > body_length:
        raise bad_request(
            f"{HEADER_LENGTH_HEADER} is {length} but the body has only {body_length} bytes"
        )
    if length == 0:
        raise bad_request(f"{HEADER_LENGTH_HEADER} is 0: the JSON header is missing")
    return length


def _load_json(raw: bytes) -> Any:
    if not raw:
        raise bad_request("empty request body")
    # Count brackets only: an upper bound on nesting (brackets inside strings count too, which
    # can only over-estimate), computed in C before the recursive parser sees the text.
    brackets = np.frombuffer(raw.translate(None, _NOT_BRACKETS), dtype=np.uint8)
    if brackets.size > MAX_JSON_DEPTH:
        steps = np.where((brackets == ord("[")) | (brackets == ord("{")), 1, -1)
        if int(np.cumsum(steps, dtype=np.int64).max()) > MAX_JSON_DEPTH:
            raise bad_request(f"JSON nesting deeper than {MAX_JSON_DEPTH} levels")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request(
            f"request header is not valid UTF-8: {exc.reason} at byte {exc.start}"
        ) from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:  # json.JSONDecodeError, too-long integer literals, NaN/Infinity
        raise bad_request(f"request header is not valid JSON: {exc}") from None
    except RecursionError:
        raise bad_request("JSON nesting too deep") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _validate_structure(obj: Any) -> InferenceRequest:
    if not isinstance(obj, dict):
        raise bad_request("request body must be a JSON object")
    try:
        return InferenceRequest.model_validate(obj)
    except ValidationError as exc:
        raise bad_request(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    parts = []
    for error in errors[:3]:
        where = ".".join(str(part) for part in error["loc"]) or "request"
        parts.append(f"{where}: {error['msg']}")
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return "invalid inference request: " + "; ".join(parts) + more


@dataclass(frozen=True, slots=True)
class _Params:
    score: ScoreName | None
    threshold: float | None
    target_tpr: float | None
    timeout_s: float | None
    binary_output: bool


def _number(value: object) -> float | None:
    """``value`` as a finite float, or None (bools, strings, NaN, inf, ints beyond float range)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _request_parameters(params: Mapping[str, ScalarParameter] | None) -> _Params:
    params = params or {}
    unknown = sorted(set(params) - _REQUEST_PARAMETERS)
    if unknown:
        raise bad_request(
            f"unknown request parameter(s) {unknown}; supported: {sorted(_REQUEST_PARAMETERS)}"
        )
    score = None
    if "score" in params:
        value = params["score"]
        if not isinstance(value, str) or value not in {s.value for s in ScoreName}:
            choices = " | ".join(s.value for s in ScoreName)
            raise bad_request(f"parameter 'score' must be one of {choices}, got {value!r}")
        score = ScoreName(value)
    threshold = None
    if "threshold" in params:
        value = params["threshold"]
        threshold = _number(value)
        if threshold is None:
            raise bad_request(f"parameter 'threshold' must be a finite number, got {value!r}")
    target_tpr = None
    if "target_tpr" in params:
        value = params["target_tpr"]
        target_tpr = _number(value)
        if target_tpr is None or not 0.0 < target_tpr <= 1.0:
            raise bad_request(f"parameter 'target_tpr' must be a number in (0, 1], got {value!r}")
    if threshold is not None and target_tpr is not None:
        raise bad_request("give 'threshold' or 'target_tpr', not both")
    timeout_s = None
    if "timeout" in params:
        value = params["timeout"]
        timeout_us = _number(value)
        if timeout_us is None or not 0.0 <= timeout_us < 1e15:
            raise bad_request(
                f"parameter 'timeout' must be a non-negative number of microseconds, got {value!r}"
            )
        timeout_s = timeout_us / 1e6 or None
    binary_output = params.get("binary_data_output", False)
    if not isinstance(binary_output, bool):
        raise bad_request(
            f"parameter 'binary_data_output' must be a boolean, got {binary_output!r}"
        )
    if "priority" in params and _number(params["priority"]) is None:
        raise bad_request(f"parameter 'priority' must be a number, got {params['priority']!r}")
    return _Params(score, threshold, target_tpr, timeout_s, binary_output)


def _binary_data_size(tensor: RequestInput) -> int | None:
    params = tensor.parameters or {}
    for key in params:
        if key.startswith("shared_memory"):
            raise bad_request("the shared-memory extension is not supported")
        if key != "binary_data_size" and key not in _INPUT_PARAMETERS_IGNORED:
            raise bad_request(f"unknown parameter {key!r} on input {tensor.name!r}")
    if "binary_data_size" not in params:
        return None
    size = params["binary_data_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise bad_request(
            f"binary_data_size of input {tensor.name!r} must be a non-negative integer, "
            f"got {size!r}"
        )
    return size


def _declared_batch(tensor: RequestInput, contract: InputContract) -> int | None:
    """The batch size the shape declares, or None for ``-1`` (taken from the data)."""
    shape = tensor.shape
    expected = "[-1 or n, " + ", ".join(str(d) for d in contract.item_shape) + "]"
    if len(shape) != 1 + len(contract.item_shape):
        raise bad_request(
            f"input {tensor.name!r} has rank {len(shape)} (shape {shape}); expected {expected}"
        )
    if tuple(shape[1:]) != contract.item_shape:
        raise bad_request(f"input {tensor.name!r} has shape {shape}; expected {expected}")
    batch = shape[0]
    if batch == -1:
        return None
    if batch == 0:
        raise bad_request("empty batch: the input's first dimension is 0")
    if batch < 0:
        raise bad_request(f"input {tensor.name!r} has a negative dimension in shape {shape}")
    _check_batch(batch, contract)
    return batch


def _check_batch(batch: int, contract: InputContract) -> None:
    if batch == 0:
        raise bad_request("empty batch: the input holds no items")
    if batch > contract.max_items:
        raise bad_request(f"batch of {batch} items exceeds the limit of {contract.max_items}")


def _decode_json_data(
    tensor: RequestInput, contract: InputContract, raw_json: bytes
) -> NDArray[np.float32]:
    data = tensor.data
    if data is None:
        raise bad_request(f"input {tensor.name!r} has neither 'data' nor binary_data_size")
    if not isinstance(data, list):
        raise bad_request(f"'data' of input {tensor.name!r} must be an array of numbers")
    # The limit is checked before numpy sees the list, so a huge list costs no conversion.
    if len(data) > contract.max_items * contract.item_size:
        raise bad_request(
            f"'data' of input {tensor.name!r} holds more values than the limit of "
            f"{contract.max_items} items allows"
        )
    try:
        array = np.array(data)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise bad_request(
            f"'data' of input {tensor.name!r} must be a flat or evenly nested array of numbers"
        ) from None
    kind = array.dtype.kind
    if kind == "b":
        raise bad_request(f"'data' of input {tensor.name!r} holds booleans; FP32 needs numbers")
    if kind in "US":
        raise bad_request(f"'data' of input {tensor.name!r} holds strings; FP32 needs numbers")
    if kind not in "iuf":
        raise bad_request(
            f"'data' of input {tensor.name!r} must hold only numbers "
            "(no null, objects, uneven nesting or out-of-range integers)"
        )
    # numpy turns true/false mixed with numbers into 1/0; look for them only when they can be.
    if (b"true" in raw_json or b"false" in raw_json) and _may_hold_bools(array) and _has_bool(data):
        raise bad_request(f"'data' of input {tensor.name!r} holds booleans; FP32 needs numbers")
    with np.errstate(over="ignore"):
        return array.astype(np.float32).ravel()


def _may_hold_bools(array: NDArray[Any]) -> bool:
    return bool(np.any((array == 0) | (array == 1)))


def _has_bool(data: list[Any]) -> bool:
    stack: list[list[Any]] = [data]
    while stack:
        items = stack.pop()
        if items and type(items[0]) is list:
            stack.extend(items)
        elif bool in set(map(type, items)):
            return True
    return False


def _decode_binary(
    body: bytes, offset: int, size: int, name: str, contract: InputContract
) -> NDArray[np.float32]:
    if size % (_FP32_BYTES * contract.item_size):
        raise bad_request(
            f"binary_data_size {size} of input {name!r} is not a whole number of items of "
            f"{_FP32_BYTES * contract.item_size} bytes"
        )
    array = np.frombuffer(body, dtype="<f4", count=size // _FP32_BYTES, offset=offset)
    if not array.flags.aligned:
        array = array.copy()
    return array


def _reshape(
    flat: NDArray[np.float32],
    declared_batch: int | None,
    tensor: RequestInput,
    contract: InputContract,
) -> NDArray[np.float32]:
    per_item = contract.item_size
    if declared_batch is None:
        if flat.size % per_item:
            raise bad_request(
                f"input {tensor.name!r} has {flat.size} values, not a multiple of the "
                f"{per_item} values in one item"
            )
        batch = flat.size // per_item
        _check_batch(batch, contract)
    else:
        batch = declared_batch
        if flat.size != batch * per_item:
            raise bad_request(
                f"input {tensor.name!r} has {flat.size} values but shape {tensor.shape} "
                f"needs {batch * per_item}"
            )
    if not np.isfinite(flat).all():
        raise bad_request(
            f"input {tensor.name!r} holds NaN or infinite values (after conversion to float32)"
        )
    return flat.reshape((batch, *contract.item_shape))


def _requested_outputs(
    request: InferenceRequest, binary_default: bool
) -> tuple[RequestedOutput, ...]:
    if request.outputs is None:
        return tuple(RequestedOutput(name, binary_default) for name in OUTPUTS)
    if not request.outputs:
        raise bad_request("'outputs' is empty; omit it to get every output")
    seen: set[str] = set()
    resolved = []
    for output in request.outputs:
        if output.name not in OUTPUTS:
            raise bad_request(f"unknown output {output.name!r}; available: {', '.join(OUTPUTS)}")
        if output.name in seen:
            raise bad_request(f"output {output.name!r} is requested twice")
        seen.add(output.name)
        binary = binary_default
        for key, value in (output.parameters or {}).items():
            if key == "binary_data":
                if not isinstance(value, bool):
                    raise bad_request(
                        f"binary_data of output {output.name!r} must be a boolean, got {value!r}"
                    )
                binary = value
            elif key == "classification":
                raise bad_request("the classification extension is not supported")
            elif key.startswith("shared_memory"):
                raise bad_request("the shared-memory extension is not supported")
            elif key not in _OUTPUT_PARAMETERS_IGNORED:
                raise bad_request(f"unknown parameter {key!r} on output {output.name!r}")
        resolved.append(RequestedOutput(output.name, binary))
    return tuple(resolved)


# --- response -----------------------------------------------------------------------------------

_NUMPY_DTYPES: Final[dict[str, str]] = {"FP32": "<f4", "INT64": "<i8", "BOOL": "|b1"}


def encode_infer_response(
    request: InferRequest,
    tensors: Mapping[str, ArrayLike | Sequence[str]],
    *,
    model_name: str,
    model_version: str | None,
    parameters: Mapping[str, ScalarParameter] | None = None,
) -> EncodedResponse:
    """Build the response for ``request`` from output arrays keyed by output name.

    Only the outputs the request selected are sent, in the order it listed them. Each is cast to
    its wire datatype (:data:`~service.v2.schemas.OUTPUTS`): scores and logits to ``FP32``,
    ``class_index`` to ``INT64``, ``is_ood`` to ``BOOL``, ``label`` (a sequence of ``str``) to
    ``BYTES``. Binary outputs follow the JSON in the same order.
    """
    outputs: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for requested in request.outputs:
        kind = OUTPUTS[requested.name]
        value = tensors[requested.name]
        entry: dict[str, Any] = {"name": requested.name, "datatype": kind.datatype}
        if kind.datatype == "BYTES":
            strings = [str(s) for s in np.asarray(value, dtype=object).ravel()]
            entry["shape"] = [len(strings)]
            if requested.binary:
                chunk = serialize_bytes(strings)
                entry["parameters"] = {"binary_data_size": len(chunk)}
                chunks.append(chunk)
            else:
                entry["data"] = strings
        else:
            array = np.ascontiguousarray(value, dtype=_NUMPY_DTYPES[kind.datatype])
            entry["shape"] = list(array.shape)
            if requested.binary:
                chunk = array.tobytes()
                entry["parameters"] = {"binary_data_size": len(chunk)}
                chunks.append(chunk)
            else:
                if array.dtype.kind == "f" and not np.isfinite(array).all():
                    raise V2Error(
                        500, f"output {requested.name!r} is not finite; JSON cannot carry it"
                    )
                entry["data"] = array.ravel().tolist()
        outputs.append(entry)

    document: dict[str, Any] = {"model_name": model_name}
    if model_version is not None:
        document["model_version"] = model_version
    if request.id is not None:
        document["id"] = request.id
    if parameters:
        document["parameters"] = dict(parameters)
    document["outputs"] = outputs
    try:
        header = json.dumps(document, separators=(",", ":"), allow_nan=False).encode()
    except ValueError as exc:
        raise V2Error(500, f"response is not representable as JSON: {exc}") from None
    if not chunks:
        return EncodedResponse(header, {}, JSON_MEDIA_TYPE)
    return EncodedResponse(
        b"".join([header, *chunks]),
        {HEADER_LENGTH_HEADER: str(len(header))},
        BINARY_MEDIA_TYPE,
    )


def serialize_bytes(strings: Sequence[str | bytes]) -> bytes:
    """``BYTES`` binary layout: per element a 4-byte little-endian length, then the bytes."""
    parts = []
    for item in strings:
        raw = item.encode("utf-8") if isinstance(item, str) else item
        parts.append(struct.pack("<I", len(raw)))
        parts.append(raw)
    return b"".join(parts)
