"""Hydra configs of cdrexp (YAML in this package) and the typed schema they sit on.

Importing this package registers ``cdrexp.config.ExperimentConfig`` in Hydra's
ConfigStore as ``cdrexp_schema``: ``config.yaml`` starts its defaults list with it, so
every key and type comes from the dataclasses and the YAML only picks group options and
presets. Hydra imports this package when it reads ``pkg://cdrexp.conf``.
"""
from hydra.core.config_store import ConfigStore

from ..config import ExperimentConfig

SCHEMA_NAME = "cdrexp_schema"
CONFIG_MODULE = "cdrexp.conf"
CONFIG_NAME = "config"

ConfigStore.instance().store(name=SCHEMA_NAME, node=ExperimentConfig)
