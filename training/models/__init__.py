"""Model registry: see :mod:`training.models.registry`."""

from training.models.registry import MODELS, Classifier, create_model

__all__ = ["MODELS", "Classifier", "create_model"]
