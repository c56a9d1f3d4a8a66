"""Model repository validation: every broken model is refused with a reason, before it runs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from service.manifest import MANIFEST_FILENAME, ONNX_FILENAME
from service.repository import ModelLoadError, discover, load_artifact
from service.runtime import OnnxModel, RuntimeOptions, choose_providers
from tests.model_factory import TinyModel, build_model_dir

CPU = RuntimeOptions(("CPUExecutionProvider",), 1)


def load(directory: Path) -> OnnxModel:
    (location,) = [loc for loc in discover(directory.parent.parent) if loc.directory == directory]
    return OnnxModel.create(load_artifact(location), CPU, warmup_batch=4)


def rewrite_onnx(directory: Path, model: onnx.ModelProto) -> None:
    """Replace model.onnx and fix the manifest's sha256 and size so only the graph is wrong."""
    data = model.SerializeToString()
    (directory / ONNX_FILENAME).write_bytes(data)
    edit_manifest(
        directory, onnx={"sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}
    )


def edit_manifest(directory: Path, **changes: dict | str) -> None:
    path = directory / MANIFEST_FILENAME
    manifest = json.loads(path.read_text())
    for key, value in changes.items():
        if isinstance(value, dict):
            manifest[key].update(value)
        else:
            manifest[key] = value
    path.write_text(json.dumps(manifest))


def test_valid_model_loads_on_cpu_and_reports_provider(tmp_path: Path) -> None:
    model = load(build_model_dir(tmp_path, name="ok"))
    assert model.provider == "CPUExecutionProvider"
    assert model.run(np.zeros((3, 1, 28, 28), np.float32)).shape == (3, 10)


def test_discover_sorts_versions_numerically(tmp_path: Path) -> None:
    for version in ("10", "2", "1"):
        (tmp_path / "m" / version).mkdir(parents=True)
    (tmp_path / ".hidden" / "1").mkdir(parents=True)
    (tmp_path / "README.md").write_text("not a model")
    assert [loc.version for loc in discover(tmp_path)] == ["1", "2", "10"]


def test_missing_model_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        discover(tmp_path / "nope")


@pytest.mark.parametrize(("name", "version"), [("Bad_Name", "1"), ("ok", "v1"), ("ok", "01")])
def test_directory_names_must_match_patterns(tmp_path: Path, name: str, version: str) -> None:
    (tmp_path / name / version).mkdir(parents=True)
    (location,) = discover(tmp_path)
    with pytest.raises(ModelLoadError, match="does not match"):
        load_artifact(location)


def test_missing_manifest(tmp_path: Path) -> None:
    directory = build_model_dir(tmp_path, name="m")
    (directory / MANIFEST_FILENAME).unlink()
    with pytest.raises(ModelLoadError, match=r"manifest\.json is missing"):
        load(directory)


def test_manifest_schema_violation(tmp_path: Path) -> None:
    directory = build_model_dir(tmp_path, name="m")
    edit_manifest(directory, unexpected="field")
    with pytest.raises(ModelLoadError, match=r"manifest\.json is invalid"):
        load(directory)


def test_manifest_name_must_match_directory(tmp_path: Path) -> None:
    directory = build_model_dir(tmp_path, name="m")
    edit_manifest(directory, name="other")
    with pytest.raises(ModelLoadError, match="manifest says other/1"):
        load(directory)


def test_size_checked_before_hash(tmp_path: Path) -> None:
    directory = build_model_dir(tmp_path, name="m")
    with (directory / ONNX_FILENAME).open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelLoadError, match="bytes, manifest says"):
        load(directory)


def test_sha256_mismatch(tmp_path: Path) -> None:
    directory = build_model_dir(tmp_path, name="m")
    edit_manifest(directory, onnx={"sha256": "0" * 64})
    with pytest.raises(ModelLoadError, match="sha256"):
        load(directory)


def test_unparseable_onnx(tmp_path: Path) -> None:
    directory = build_model_dir(tmp_path, name="m")
    data = b"this is not a protobuf" * 10
    (directory / ONNX_FILENAME).write_bytes(data)
    edit_manifest(
        directory, onnx={"sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}
    )
    with pytest.raises(ModelLoadError):
        load(directory)


def test_external_data_is_refused(tmp_path: Path) -> None:
    directory = build_model_dir(tmp_path, name="m")
    model = onnx.load_model(str(directory / ONNX_FILENAME))
    weight = model.graph.initializer[0]
    weight.data_location = TensorProto.EXTERNAL
    weight.ClearField("raw_data")
    entry = weight.external_data.add()
    entry.key, entry.value = "location", "../../../etc/passwd"
    rewrite_onnx(directory, model)
    with pytest.raises(ModelLoadError, match="external data"):
        load(directory)


def test_input_name_must_match_manifest(tmp_path: Path) -> None:
    directory = build_model_dir(tmp_path, name="m")
    rewrite_onnx(directory, TinyModel.random().onnx_model(input_name="pixels"))
    with pytest.raises(ModelLoadError, match="graph inputs"):
        load(directory)


def test_output_name_must_match_manifest(tmp_path: Path) -> None:
    directory = build_model_dir(tmp_path, name="m")
    rewrite_onnx(directory, TinyModel.random().onnx_model(output_name="scores"))
    with pytest.raises(ModelLoadError, match="lack manifest output"):
        load(directory)


def test_input_shape_must_match_manifest(tmp_path: Path) -> None:
    directory = build_model_dir(tmp_path, name="m")
    rewrite_onnx(directory, TinyModel.random(input_shape=(1, 32, 32)).onnx_model())
    with pytest.raises(ModelLoadError, match="axis 2 is 32"):
        load(directory)


def test_number_of_classes_must_match_manifest(tmp_path: Path) -> None:
    directory = build_model_dir(tmp_path, name="m")
    rewrite_onnx(directory, TinyModel.random(num_classes=5).onnx_model())
    with pytest.raises(ModelLoadError, match="axis 1 is 5"):
        load(directory)


def test_fixed_batch_axis_is_refused(tmp_path: Path) -> None:
    directory = build_model_dir(tmp_path, name="m")
    model = onnx.load_model(str(directory / ONNX_FILENAME))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    rewrite_onnx(directory, model)
    with pytest.raises(ModelLoadError, match="fixed batch axis"):
        load(directory)


def test_non_float_input_is_refused(tmp_path: Path) -> None:
    directory = build_model_dir(tmp_path, name="m")
    tiny = TinyModel.random()
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["input"], ["x"], to=TensorProto.FLOAT),
            helper.make_node("Flatten", ["x"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "weight", "bias"], ["logits"], transB=1),
        ],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.DOUBLE, ["n", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 10])],
        [
            numpy_helper.from_array(tiny.weight, "weight"),
            numpy_helper.from_array(tiny.bias, "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    rewrite_onnx(directory, model)
    with pytest.raises(ModelLoadError, match="expected FLOAT"):
        load(directory)


def test_checker_failure_is_reported(tmp_path: Path) -> None:
    directory = build_model_dir(tmp_path, name="m")
    model = onnx.load_model(str(directory / ONNX_FILENAME))
    model.graph.node[1].op_type = "NoSuchOp"
    rewrite_onnx(directory, model)
    with pytest.raises(ModelLoadError, match=r"onnx\.checker"):
        load(directory)


def test_golden_sample_must_reproduce(tmp_path: Path) -> None:
    directory = build_model_dir(tmp_path, name="m")
    rewrite_onnx(directory, TinyModel.random(seed=99).onnx_model())  # other weights
    with pytest.raises(ModelLoadError, match="golden logits differ"):
        load(directory)


def test_unavailable_providers_are_skipped() -> None:
    assert choose_providers(("NoSuchExecutionProvider", "CPUExecutionProvider")) == [
        "CPUExecutionProvider"
    ]
    with pytest.raises(RuntimeError, match="none of the providers"):
        choose_providers(("NoSuchExecutionProvider",))
