"""``python -m cdrexp.cli.child --config resolved.yaml``: one unmeasured generation.

The profilers wrap this command so that they see a whole generation, workers included,
without the runner's own code (MLflow, Hydra) in the profile.

The config is read with PyYAML's C loader and checked by ``config.from_plain``, not
OmegaConf: a resolved config needs no interpolation, and OmegaConf's import was ~90 ms
of CPU and ~12 MB of every measured generation.
"""
from __future__ import annotations

import argparse
import json
import sys

import yaml

from ..config import ConfigError, GeneratorConfig, from_plain, validate

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_config(path: str) -> GeneratorConfig:
    """The generation part of the resolved config at ``path``, checked and validated."""
    try:
        with open(path, encoding="utf-8") as fh:
            raw = yaml.load(fh, Loader=_LOADER)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: not a mapping of config keys")
    keep = {f: raw[f] for f in GeneratorConfig.__dataclass_fields__ if f in raw}
    cfg = from_plain(keep, GeneratorConfig)
    validate(cfg)
    return cfg


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cdrexp.cli.child")
    ap.add_argument("--config", required=True, help="a resolved config YAML")
    ap.add_argument("--stats", help="write the generation statistics here as JSON")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"cdrexp: config error: {exc}", file=sys.stderr)
        return 2
    from ..generation import generate
    stats = generate(cfg)
    if args.stats:
        with open(args.stats, "w") as fh:
            json.dump(stats.to_dict(), fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
