"""One ONNX Runtime session per model version: providers, threads, golden check and warm-up.

:meth:`OnnxModel.create` makes the session from bytes whose hash :mod:`service.repository` already
checked, checks what the session reports against the manifest, reproduces the manifest's golden
logits and runs one full-size batch so that the first request does not pay for lazy initialisation.
Only then is the model handed to a batcher. :meth:`OnnxModel.run` is synchronous and is called
from the batcher's single worker thread, never on the event loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from service.manifest import Manifest
from service.repository import ModelArtifact, ModelLoadError

logger = logging.getLogger(__name__)

#: Builds the load error for the model being checked.
_Fail = Callable[[str], ModelLoadError]


@dataclass(frozen=True)
class RuntimeOptions:
    """The ONNX Runtime part of the settings."""

    providers: tuple[str, ...]
    intra_op_threads: int = 0
    inter_op_threads: int = 1
    allow_spinning: bool = False


def choose_providers(preferred: tuple[str, ...]) -> list[str]:
    """The preferred providers this ONNX Runtime build has, in order (CUDA only with -gpu).

    Always passed explicitly to the session: ORT's implicit choice differs between builds.
    """
    available = set(ort.get_available_providers())
    chosen = [provider for provider in preferred if provider in available]
    if not chosen:
        raise RuntimeError(
            f"none of the providers {list(preferred)} is available; "
            f"this onnxruntime has {sorted(available)}"
        )
    return chosen


class OnnxModel:
    """A checked, warmed-up inference session for one model version."""

    def __init__(self, session: ort.InferenceSession, manifest: Manifest) -> None:
        self._session = session
        self.manifest = manifest
        self._input_name = manifest.input.name
        self._output_names = [manifest.output.name]
        #: the provider that actually runs the model (ORT falls back to CPU if CUDA fails)
        self.provider: str = session.get_providers()[0]

    @classmethod
    def create(
        cls, artifact: ModelArtifact, options: RuntimeOptions, warmup_batch: int
    ) -> OnnxModel:
        """Session, checks and warm-up; raises :class:`ModelLoadError` with the reason."""
        location = artifact.location

        def fail(reason: str) -> ModelLoadError:
            return ModelLoadError(location.name, location.version, reason)

        try:
            session = ort.InferenceSession(
                artifact.onnx_bytes,
                sess_options=_session_options(options),
                providers=choose_providers(options.providers),
            )
        except Exception as exc:  # ORT raises its own exception classes
            raise fail(f"ONNX Runtime cannot load the model: {exc}") from None
        model = cls(session, artifact.manifest)
        model._check_session(fail)
        model._check_golden(fail)
        seconds = model.warm_up(warmup_batch)
        logger.info(
            "loaded model %s version %s on %s (warm-up of %d items took %.1f ms)",
            location.name,
            location.version,
            model.provider,
            warmup_batch,
            seconds * 1000,
        )
        return model

    def run(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        """Logits of shape (items, classes) for a float32 batch of shape (items, C, H, W)."""
        (logits,) = self._session.run(self._output_names, {self._input_name: batch})
        if logits.shape != (batch.shape[0], self.manifest.output.num_classes):
            raise RuntimeError(f"model returned shape {logits.shape} for {batch.shape[0]} items")
        return np.asarray(logits, dtype=np.float32)

    def warm_up(self, items: int) -> float:
        """Run one full-size batch of zeros; returns its duration in seconds."""
        start = time.monotonic()
        self.run(np.zeros((items, *self.manifest.input.shape), dtype=np.float32))
        return time.monotonic() - start

    def _check_session(self, fail: _Fail) -> None:
        """Names, element types and ranks as ONNX Runtime sees them, against the manifest."""
        inputs = self._session.get_inputs()
        if [i.name for i in inputs] != [self._input_name]:
            raise fail(f"session inputs {[i.name for i in inputs]} != [{self._input_name!r}]")
        outputs = {o.name: o for o in self._session.get_outputs()}
        if self._output_names[0] not in outputs:
            raise fail(f"session outputs {sorted(outputs)} lack {self._output_names[0]!r}")
        for value, rank in ((inputs[0], 4), (outputs[self._output_names[0]], 2)):
            if value.type != "tensor(float)" or len(value.shape) != rank:
                raise fail(
                    f"session {value.name!r} is {value.type} of rank {len(value.shape)}, "
                    f"expected tensor(float) of rank {rank}"
                )

    def _check_golden(self, fail: _Fail) -> None:
        """Reproduce the logits training recorded for the manifest's golden inputs."""
        golden = self.manifest.golden
        if golden is None:
            logger.warning(
                "model %s version %s has no golden sample; skipping the check",
                self.manifest.name,
                self.manifest.version,
            )
            return
        shape = self.manifest.input.shape
        inputs = np.asarray(golden.inputs, dtype=np.float32)
        expected = np.asarray(golden.logits, dtype=np.float32)
        if inputs.ndim != 2 or inputs.shape[1] != int(np.prod(shape)):
            raise fail(f"golden inputs have shape {inputs.shape}, expected (n, {np.prod(shape)})")
        try:
            logits = self.run(inputs.reshape(-1, *shape))
        except Exception as exc:
            raise fail(f"golden sample does not run: {exc}") from None
        if logits.shape != expected.shape:
            raise fail(f"golden logits have shape {expected.shape}, model gives {logits.shape}")
        error = float(np.max(np.abs(logits - expected)))
        if not error <= golden.atol:
            raise fail(f"golden logits differ by {error:.3g} > atol {golden.atol:g}")


def _session_options(options: RuntimeOptions) -> ort.SessionOptions:
    session_options = ort.SessionOptions()
    session_options.intra_op_num_threads = options.intra_op_threads
    session_options.inter_op_num_threads = options.inter_op_threads
    session_options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session_options.add_session_config_entry(
        "session.intra_op.allow_spinning", "1" if options.allow_spinning else "0"
    )
    return session_options
