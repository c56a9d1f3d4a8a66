"""Finds ``<model_dir>/<name>/<version>/`` and validates each one before any runtime sees it.

Checks, in order, each one before the next parses anything more:

1. the directory names match the strict name and version patterns of :mod:`service.manifest`;
2. ``manifest.json`` passes the schema, and its name and version equal the directory's;
3. ``model.onnx`` has the size, then the sha256, that the manifest records (before parsing it);
4. the ONNX graph holds no tensor with external data, passes ``onnx.checker`` (full check), and
   its input and output names, element types, ranks and static dimensions match the manifest,
   with a dynamic batch axis (batching depends on it).

Paths are built only from directory listings, never from request data.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import onnx
from pydantic import ValidationError

from service.manifest import (
    MANIFEST_FILENAME,
    MODEL_NAME_PATTERN,
    MODEL_VERSION_PATTERN,
    ONNX_FILENAME,
    Manifest,
    read_manifest,
)

logger = logging.getLogger(__name__)

_NAME = re.compile(MODEL_NAME_PATTERN)
_VERSION = re.compile(MODEL_VERSION_PATTERN)


class ModelLoadError(Exception):
    """A model version that cannot be served, with the reason in words."""

    def __init__(self, name: str, version: str, reason: str) -> None:
        super().__init__(f"model {name!r} version {version!r}: {reason}")
        self.name = name
        self.version = version
        self.reason = reason


#: Builds the error for the model version being checked, from a reason in words.
_Fail = Callable[[str], ModelLoadError]


@dataclass(frozen=True)
class ModelLocation:
    """One ``<name>/<version>/`` directory found on disk."""

    name: str
    version: str
    directory: Path


@dataclass(frozen=True)
class ModelArtifact:
    """A validated model version: its manifest and the ONNX bytes whose hash was checked."""

    location: ModelLocation
    manifest: Manifest
    onnx_bytes: bytes


def discover(model_dir: Path) -> list[ModelLocation]:
    """Every ``<name>/<version>/`` directory under ``model_dir``, sorted by name then version.

    Hidden entries and plain files are ignored. A directory whose name breaks the patterns is
    returned too, so that loading it reports a clear error instead of skipping it silently.
    """
    if not model_dir.is_dir():
        raise FileNotFoundError(f"model directory {model_dir} does not exist")
    found = [
        ModelLocation(name_dir.name, version_dir.name, version_dir)
        for name_dir in _subdirectories(model_dir)
        for version_dir in _subdirectories(name_dir)
    ]
    return sorted(found, key=lambda loc: (loc.name, _version_key(loc.version)))


def _subdirectories(directory: Path) -> Iterator[Path]:
    for entry in sorted(directory.iterdir()):
        if entry.is_dir() and not entry.name.startswith("."):
            yield entry


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), version) if version.isdigit() else (-1, version)


def load_artifact(location: ModelLocation) -> ModelArtifact:
    """Validate one model version's files (steps 1-4 above); raises :class:`ModelLoadError`."""

    def fail(reason: str) -> ModelLoadError:
        return ModelLoadError(location.name, location.version, reason)

    if not _NAME.fullmatch(location.name):
        raise fail(f"directory name does not match {MODEL_NAME_PATTERN}")
    if not _VERSION.fullmatch(location.version):
        raise fail(f"version directory does not match {MODEL_VERSION_PATTERN}")
    manifest = _read_manifest(location, fail)
    onnx_bytes = _read_onnx_bytes(location.directory / ONNX_FILENAME, manifest, fail)
    check_graph(onnx_bytes, manifest, fail)
    return ModelArtifact(location, manifest, onnx_bytes)


def _read_manifest(location: ModelLocation, fail: _Fail) -> Manifest:
    path = location.directory / MANIFEST_FILENAME
    if not path.is_file():
        raise fail(f"{MANIFEST_FILENAME} is missing")
    try:
        manifest = read_manifest(path)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'manifest'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise fail(f"{MANIFEST_FILENAME} is invalid: {problems}") from None
    if (manifest.name, manifest.version) != (location.name, location.version):
        raise fail(
            f"manifest says {manifest.name}/{manifest.version}, directory is "
            f"{location.name}/{location.version}"
        )
    return manifest


def _read_onnx_bytes(path: Path, manifest: Manifest, fail: _Fail) -> bytes:
    """The file's bytes, once its size and sha256 match the manifest (checked before parsing)."""
    if not path.is_file():
        raise fail(f"{ONNX_FILENAME} is missing")
    size = path.stat().st_size
    if size != manifest.onnx.size_bytes:
        raise fail(f"{ONNX_FILENAME} has {size} bytes, manifest says {manifest.onnx.size_bytes}")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != manifest.onnx.sha256:
        raise fail(f"{ONNX_FILENAME} sha256 {digest} does not match the manifest")
    return data


def check_graph(onnx_bytes: bytes, manifest: Manifest, fail: _Fail) -> None:
    """Parse the model and check it against the manifest without running it."""
    try:
        model = onnx.load_model_from_string(onnx_bytes)
    except Exception as exc:  # protobuf raises its own DecodeError types
        raise fail(f"{ONNX_FILENAME} does not parse: {exc}") from None
    if any(_uses_external_data(tensor) for tensor in _all_tensors(model.graph)):
        raise fail("tensors with external data are not allowed")
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise fail(f"onnx.checker rejects the model: {str(exc)[:300]}") from None
    _check_io(model.graph, manifest, fail)


def _uses_external_data(tensor: onnx.TensorProto) -> bool:
    return tensor.HasField("data_location") and tensor.data_location == onnx.TensorProto.EXTERNAL


def _all_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Initializers and attribute tensors of a graph and all its subgraphs."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _all_tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from _all_tensors(subgraph)


def _check_io(graph: onnx.GraphProto, manifest: Manifest, fail: _Fail) -> None:
    initializers = {tensor.name for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    if [value.name for value in inputs] != [manifest.input.name]:
        raise fail(
            f"graph inputs {[v.name for v in inputs]} != manifest input [{manifest.input.name!r}]"
        )
    outputs = {value.name: value for value in graph.output}
    if manifest.output.name not in outputs:
        raise fail(f"graph outputs {sorted(outputs)} lack manifest output {manifest.output.name!r}")
    _check_tensor(inputs[0], (None, *manifest.input.shape), fail)
    _check_tensor(outputs[manifest.output.name], (None, manifest.output.num_classes), fail)


def _check_tensor(
    value: onnx.ValueInfoProto, expected: tuple[int | None, ...], fail: _Fail
) -> None:
    """Element type float32, rank and static dimensions as expected; batch axis (None) dynamic."""
    tensor_type = value.type.tensor_type
    if tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise fail(
            f"{value.name!r} has element type "
            f"{onnx.TensorProto.DataType.Name(tensor_type.elem_type)}, expected FLOAT"
        )
    dims = [dim.dim_value if dim.HasField("dim_value") else None for dim in tensor_type.shape.dim]
    if len(dims) != len(expected):
        raise fail(f"{value.name!r} has rank {len(dims)}, expected {len(expected)}")
    if dims[0] is not None:
        raise fail(f"{value.name!r} has a fixed batch axis of {dims[0]}; it must be dynamic")
    for axis, (got, want) in enumerate(zip(dims[1:], expected[1:], strict=True), start=1):
        if got is not None and got != want:
            raise fail(f"{value.name!r} axis {axis} is {got}, manifest says {want}")
