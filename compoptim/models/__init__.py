"""Model zoo by name; models read input shape and class count from the dataset."""

from compoptim.models.registry import MODELS, build_model

__all__ = ["MODELS", "build_model"]
