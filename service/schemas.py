"""Request and response bodies of the HTTP API, with the examples the OpenAPI docs show.

``PredictRequest`` is parsed straight from the body bytes with pydantic's JSON parser (faster than
``json.loads`` and strict: ``true`` or ``"1"`` inside an array is a type error, not a number).
The responses are documented here but built as plain dicts by :mod:`service.predictor`, which is
cheaper than validating a model per item.

Score directions: ``msp`` and ``max_logit`` are higher for in-distribution inputs; ``energy`` is
lower for in-distribution inputs. An item is accepted when its score is on the in-distribution
side of the threshold, inclusive.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

from service.scores import ScoreName

StrictFloat = Annotated[float, Strict()]
#: One item as a nested array (channels x height x width) of JSON numbers.
ArrayItem = list[list[list[StrictFloat]]]


class ImageItem(BaseModel):
    """One item as an encoded image; the server decodes, converts, resizes and normalizes it."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(description="base64 PNG or JPEG, optionally a data: URL")


_ARRAY_EXAMPLE: list[Any] = [[[0.0] * 28] * 28]


class PredictRequest(BaseModel):
    """Items to score and options for the decision."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"inputs": [{"image": "iVBORw0KGgo...base64 PNG..."}], "top_k": 3},
                {
                    "inputs": [_ARRAY_EXAMPLE],
                    "preprocessed": True,
                    "score": "energy",
                    "target_tpr": 0.95,
                },
            ]
        },
    )

    inputs: list[ArrayItem | ImageItem] = Field(
        min_length=1,
        description="items: each a nested array in the model's input shape (C, H, W), or "
        '{"image": base64 PNG/JPEG}',
    )
    preprocessed: bool = Field(
        default=True,
        description="arrays only: true = already normalized model input; false = raw pixel "
        "values (0-255) that the server scales and normalizes as the manifest says. Images are "
        "always preprocessed by the server.",
    )
    score: ScoreName | None = Field(
        default=None,
        description="msp (higher = in-distribution), energy (lower = in-distribution) or "
        "max_logit (higher = in-distribution); default: the server's",
    )
    threshold: float | None = Field(
        default=None, allow_inf_nan=False, description="explicit threshold for the score"
    )
    target_tpr: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="threshold accepting this fraction of in-distribution inputs, derived from "
        "the model's calibration quantiles",
    )
    top_k: int | None = Field(default=None, ge=1, description="also return the k likeliest classes")
    return_probabilities: bool = Field(default=False, description="also return all probabilities")
    timeout: float | None = Field(
        default=None,
        ge=0.001,
        le=3600.0,
        allow_inf_nan=False,
        description="seconds to answer within (else 504); only lowers the server's timeout",
    )

    @model_validator(mode="after")
    def _one_threshold_rule(self) -> PredictRequest:
        if self.threshold is not None and self.target_tpr is not None:
            raise ValueError("give either threshold or target_tpr, not both")
        return self


class Scores(BaseModel):
    msp: float = Field(description="max softmax probability; higher = in-distribution")
    energy: float = Field(description="-T logsumexp(logits / T); lower = in-distribution")
    max_logit: float = Field(description="largest logit; higher = in-distribution")


class ClassProbability(BaseModel):
    label: str
    class_index: int
    probability: float


class Prediction(BaseModel):
    """The result for one item."""

    label: str = Field(description="most likely class")
    class_index: int
    confidence: float = Field(description="MSP: probability of the predicted class")
    scores: Scores
    ood: bool = Field(description="true when the item is rejected as out-of-distribution")
    decision: Literal["accept", "reject"]
    top_k: list[ClassProbability] | None = None
    probabilities: list[float] | None = None


class PredictResponse(BaseModel):
    """Results in the order of ``inputs``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": "fashion-mnist-logitnorm",
                    "version": "1",
                    "score": "msp",
                    "score_direction": "higher_is_in",
                    "threshold": 0.83,
                    "threshold_source": "manifest",
                    "target_tpr": 0.95,
                    "predictions": [
                        {
                            "label": "Sneaker",
                            "class_index": 7,
                            "confidence": 0.97,
                            "scores": {"msp": 0.97, "energy": -24.1, "max_logit": 24.0},
                            "ood": False,
                            "decision": "accept",
                        }
                    ],
                }
            ]
        }
    )

    model: str
    version: str
    score: ScoreName = Field(description="the score that decided")
    score_direction: Literal["higher_is_in", "lower_is_in"] = Field(
        description="higher_is_in: accept when score >= threshold; lower_is_in: when <="
    )
    threshold: float
    threshold_source: Literal["manifest", "settings", "request"]
    target_tpr: float | None = Field(description="TPR the threshold was calibrated for, if known")
    predictions: list[Prediction]


class ThresholdPublic(BaseModel):
    score: ScoreName
    direction: str
    threshold: float
    source: Literal["manifest", "settings", "request"]
    target_tpr: float | None


class ModelVersionPublic(BaseModel):
    """What ``GET /models/{name}`` tells about one version."""

    name: str
    version: str
    ready: bool
    provider: str | None = None
    description: str = ""
    created_at: str | None = None
    classes: list[str] = []
    input: dict[str, Any] | None = None
    preprocessing: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    default_score: ScoreName | None = None
    thresholds: list[ThresholdPublic] = []
    calibration: dict[str, Any] | None = None
    evaluation: dict[str, Any] = Field(default_factory=dict, description="manifest metrics")
    error: str | None = Field(default=None, description="why a version failed to load")


class ModelPublic(BaseModel):
    name: str
    default: bool = Field(description="served by POST /predict")
    latest_version: str | None = Field(description="served when no version is named")
    versions: list[ModelVersionPublic]


class ModelList(BaseModel):
    default_model: str
    models: list[ModelPublic]
