"""KServe Open Inference Protocol v2 (REST) with Triton's binary tensor data extension.

``codec`` parses requests and encodes responses (framework free), ``schemas`` holds the pydantic
models and metadata builders, ``errors`` the ``{"error": ...}`` exception.
"""

from service.v2.codec import (
    BINARY_MEDIA_TYPE,
    HEADER_LENGTH_HEADER,
    JSON_MEDIA_TYPE,
    EncodedResponse,
    InferRequest,
    InputContract,
    RequestedOutput,
    encode_infer_response,
    parse_infer_request,
)
from service.v2.errors import V2Error
from service.v2.schemas import OUTPUTS, model_metadata, server_metadata

__all__ = [
    "BINARY_MEDIA_TYPE",
    "HEADER_LENGTH_HEADER",
    "JSON_MEDIA_TYPE",
    "OUTPUTS",
    "EncodedResponse",
    "InferRequest",
    "InputContract",
    "RequestedOutput",
    "V2Error",
    "encode_infer_response",
    "model_metadata",
    "parse_infer_request",
    "server_metadata",
]
