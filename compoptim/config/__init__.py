"""Structured-config schemas (types and allowed keys) registered with Hydra's ConfigStore."""

from compoptim.config.schema import GROUPS, RunConfig, register_schemas

__all__ = ["GROUPS", "RunConfig", "register_schemas"]
