"""Hydra configs of cdrexp (YAML in this package) and the typed schema they sit on.

Importing this package registers ``cdrexp.config.ExperimentConfig`` in Hydra's
ConfigStore as ``cdrexp_schema``: ``config.yaml`` starts its defaults list with it, so
every key and type comes from the dataclasses and the YAML only picks group options and
presets. Hydra imports this package when it reads ``pkg://cdrexp.conf``.

It also registers the resolver ``${cdrexp_uid:}``: a random id, the same wherever one
command's config uses it (OmegaConf caches it on the config, and Hydra copies that cache
to every job of a sweep), different for every command. config.yaml puts it in the run
and sweep directories, so commands started in the same second never share one, and
in ``CDREXP_COMMAND_ID``, which ties a sweep's jobs to their parent run.
"""
import uuid

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from ..config import ExperimentConfig

SCHEMA_NAME = "cdrexp_schema"
CONFIG_MODULE = "cdrexp.conf"
CONFIG_NAME = "config"

ConfigStore.instance().store(name=SCHEMA_NAME, node=ExperimentConfig)
OmegaConf.register_new_resolver("cdrexp_uid", lambda: uuid.uuid4().hex[:6], use_cache=True,
                                replace=True)
