"""The run config: schemas generated from the registries, and the one way to compose it."""

from compoptim.config.compose import compose_config, composer, normalize_overrides
from compoptim.config.schema import GROUPS, RunConfig, group_options, register_schemas

__all__ = ["GROUPS", "RunConfig", "compose_config", "composer", "group_options", "normalize_overrides",
           "register_schemas"]
