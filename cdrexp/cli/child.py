"""``python -m cdrexp.cli.child --config resolved.yaml``: one unmeasured generation.

The profilers wrap this command so that they see a whole generation, workers included,
without the runner's own code (MLflow, Hydra) in the profile.
"""
from __future__ import annotations

import argparse
import json
import sys

from omegaconf import OmegaConf

from ..config import ConfigError, GeneratorConfig, to_config


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cdrexp.cli.child")
    ap.add_argument("--config", required=True, help="a resolved config YAML")
    ap.add_argument("--stats", help="write the generation statistics here as JSON")
    args = ap.parse_args(argv)
    try:
        raw = OmegaConf.load(args.config)
        keep = {f: raw[f] for f in GeneratorConfig.__dataclass_fields__ if f in raw}
        cfg = to_config(keep, GeneratorConfig)
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
