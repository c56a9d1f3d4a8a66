"""Pydantic models of the Open Inference Protocol v2 (REST) as this service speaks it.

Written from the KServe spec (``open-inference-protocol/specification/protocol/
open_inference_rest.yaml``) and Triton's binary tensor data extension. All models are strict and
reject unknown fields, so a misspelt ``"paramters"`` is a 400 and not a silently ignored option.

The infer request models check the *structure* of a request; :mod:`service.v2.codec` checks its
meaning (names, datatypes, shapes, binary sizes) and turns ``data`` into a numpy array. ``data``
is typed ``Any`` on purpose: validating a 200,000-element list element by element in pydantic
would cost more than the model run, and numpy does it in C.

The outputs the service can produce, with their wire datatypes, are listed in :data:`OUTPUTS`.
Scores are computed in float64 (see :mod:`service.scores`) and sent as ``FP32``: that is the
datatype clients expect from an ONNX model, and float32 keeps ~7 significant digits, far more
than a threshold comparison needs. The accept/reject decision (``is_ood``) is made on the float64
values before the cast, so rounding never flips it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from service.manifest import Manifest

#: Values a ``parameters`` object may hold (the spec's ``$parameter``: bool, number or string).
ParameterValue = StrictBool | StrictInt | StrictFloat | StrictStr
Parameters = Annotated[dict[str, ParameterValue], Field(max_length=64)]
TensorName = Annotated[str, Field(min_length=1, max_length=256)]
Datatype = Literal[
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BF16",
    "BYTES",
]

#: Datatypes the service sends; the only accepted input datatype is ``FP32``.
INPUT_DATATYPE: Final = "FP32"
PLATFORM: Final = "onnxruntime_onnx"
#: Extensions reported by ``GET /v2``: only what is implemented.
EXTENSIONS: Final[tuple[str, ...]] = ("binary_tensor_data",)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# --- infer request / response ----------------------------------------------------------------


class RequestInput(_Strict):
    """``$request_input``: one input tensor, its data inline (``data``) or binary (parameters)."""

    name: TensorName
    shape: Annotated[list[StrictInt], Field(max_length=16)]
    datatype: StrictStr
    parameters: Parameters | None = None
    data: Any = None


class RequestOutput(_Strict):
    """``$request_output``: an output the client wants, optionally as binary data."""

    name: TensorName
    parameters: Parameters | None = None


class InferenceRequest(_Strict):
    """``$inference_request``: the JSON of ``POST /v2/models/{name}[/versions/{v}]/infer``."""

    id: Annotated[StrictStr, Field(max_length=1024)] | None = None
    parameters: Parameters | None = None
    inputs: Annotated[list[RequestInput], Field(min_length=1, max_length=16)]
    outputs: Annotated[list[RequestOutput], Field(max_length=64)] | None = None


class ResponseOutput(_Strict):
    """``$response_output``: ``data`` inline, or ``binary_data_size`` bytes after the JSON."""

    name: str
    shape: list[int]
    datatype: Datatype
    parameters: Parameters | None = None
    data: list[Any] | None = None


class InferenceResponse(_Strict):
    """``$inference_response``."""

    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


class ErrorResponse(_Strict):
    """Every v2 error body."""

    error: str


# --- metadata -----------------------------------------------------------------------------------


class TensorMetadata(_Strict):
    """``$metadata_tensor``. ``-1`` marks the dynamic batch axis."""

    name: str
    datatype: Datatype
    shape: list[int]


class ServerMetadata(_Strict):
    """``GET /v2``."""

    name: str
    version: str
    extensions: list[str]


class ModelMetadata(_Strict):
    """``GET /v2/models/{name}[/versions/{version}]``."""

    name: str
    versions: list[str] | None = None
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


@dataclass(frozen=True, slots=True)
class OutputKind:
    """An output tensor the service can produce for a batch of ``n`` items.

    ``per_class`` outputs have shape ``[n, num_classes]``, the others ``[n]``.
    """

    name: str
    datatype: Literal["FP32", "INT64", "BOOL", "BYTES"]
    per_class: bool
    description: str


#: Every output, in the order returned when a request names none.
OUTPUTS: Final[dict[str, OutputKind]] = {
    kind.name: kind
    for kind in (
        OutputKind("logits", "FP32", True, "raw model logits"),
        OutputKind("probabilities", "FP32", True, "softmax of the logits"),
        OutputKind("label", "BYTES", False, "predicted class name (UTF-8)"),
        OutputKind("class_index", "INT64", False, "predicted class index"),
        OutputKind("msp", "FP32", False, "maximum softmax probability; higher = in-distribution"),
        OutputKind("energy", "FP32", False, "-T*logsumexp(f/T); lower = in-distribution"),
        OutputKind("max_logit", "FP32", False, "largest logit; higher = in-distribution"),
        OutputKind("is_ood", "BOOL", False, "true when the chosen score rejects the input"),
    )
}


def server_metadata(name: str, version: str) -> ServerMetadata:
    """The ``GET /v2`` body."""
    return ServerMetadata(name=name, version=version, extensions=list(EXTENSIONS))


def model_metadata(manifest: Manifest, versions: list[str] | None = None) -> ModelMetadata:
    """The model metadata body for one model version, built from its manifest.

    ``versions`` lists the versions the server holds for this model name (the spec's optional
    ``versions`` field); it defaults to the manifest's own version.
    """
    num_classes = manifest.output.num_classes
    outputs = [
        TensorMetadata(
            name=kind.name,
            datatype=kind.datatype,
            shape=[-1, num_classes] if kind.per_class else [-1],
        )
        for kind in OUTPUTS.values()
    ]
    return ModelMetadata(
        name=manifest.name,
        versions=list(versions) if versions is not None else [manifest.version],
        platform=PLATFORM,
        inputs=[
            TensorMetadata(
                name=manifest.input.name, datatype=INPUT_DATATYPE, shape=[-1, *manifest.input.shape]
            )
        ],
        outputs=outputs,
    )
