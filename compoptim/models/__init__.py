"""Model zoo by name; models read input shape and class count from the dataset."""

from compoptim.models.base import Model
from compoptim.models.registry import MODELS, build_model

__all__ = ["MODELS", "Model", "build_model"]
