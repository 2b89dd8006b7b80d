"""Check a command line before Hydra runs it: compose every job's config and validate it.

Hydra reports a bad override only after it has created the job's output directory, with
a multi-line message and exit code 1; a bad value (``days=0``) it does not see at all.
So ``main`` composes the config(s) here first, with Hydra's own config loader and, for
``-m``, the basic sweeper's own expansion, so every job of a sweep is checked, and turns
the first problem into one line ``cdrexp: error: <key>: <problem>``, exit code 2.

A command that will run jobs is also checked against this machine: Hydra's job
directory can be created (a read-only working directory), the worker processes and the
run's memory and output fit (``check_worker_cap``, ``check_resources``), ``out`` can be
cleared, and ``prepare_tracking`` opens (creates, migrates) the tracking store before
Hydra starts, so an unusable store is one line too; it also marks KILLED the runs a
killed command left RUNNING (``tracking.reconcile_orphans``).

Hydra has no public API for its command-line parser and the basic sweeper's expansion:
they come from ``hydra._internal``, pinned by tests/cli/test_hydra_messages.py to the
versions in ``_hydra_messages.KNOWN_HYDRA_VERSIONS``. Hydra's messages are rewritten into
one line in ``_hydra_messages``.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from hydra import initialize_config_module
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from ..conf import CONFIG_MODULE, CONFIG_NAME
from ..usage import RaisingArgumentParser, UsageError
from ._hydra_messages import describe_error, describe_os_error, describe_value_error
from ..config import (ConfigError, ExperimentConfig, check_resources, check_worker_cap,
                      check_writable, to_config)

HYDRA_VERSION_BASE = "1.3"
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Hydra's own flags (``-m``, ``--cfg``, ``--info``, ...) and the overrides."""
    hydra_parser = get_args_parser()
    parser = RaisingArgumentParser(add_help=False, parents=[hydra_parser])
    return parser.parse_args(list(argv))


def check_command_line(argv: Sequence[str]) -> Optional[list[ExperimentConfig]]:
    """Validate every job ``argv`` would run; raise ``UsageError`` on the first problem.

    Returns the jobs' configs, or None for commands that run no job (``--help``,
    ``--info``, ``--cfg``, ...) or that point Hydra at other configs (``--config-dir``,
    ...), which are left to Hydra. (``--cfg`` is validated all the same.)
    """
    args = parse_args(argv)
    if (args.help or args.hydra_help or args.info or args.shell_completion
            or args.experimental_rerun or args.config_path or args.config_name
            or args.config_dir):
        return None
    run = not args.cfg
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(CONFIG_MODULE, version_base=HYDRA_VERSION_BASE,
                                      job_name="cdrexp"):
            loader = GlobalHydra.instance().config_loader()
            if args.multirun:
                configs = _check_sweep(loader, args.overrides, run)
            else:
                cfg = loader.load_configuration(CONFIG_NAME, args.overrides,
                                                run_mode=_run_mode())
                configs = [_check_job(cfg, None, None, run)]
            return configs if run else None
    except UsageError:
        raise
    except (HydraException, OmegaConfBaseException, ConfigError) as exc:
        raise UsageError(describe_error(exc)) from None
    except OSError as exc:
        raise UsageError(describe_os_error(exc, args.overrides) or _unexpected(exc)) \
            from None
    except ValueError as exc:   # only Python's int() limit is the command line's fault
        line = describe_value_error(exc, args.overrides)
        if line is None:
            raise
        raise UsageError(line) from None
    finally:
        GlobalHydra.instance().clear()


def _unexpected(exc: OSError) -> str:
    return f"{exc.filename or 'composing the config'}: {exc.strerror or exc}"


def _run_mode(multirun: bool = False):
    from hydra.types import RunMode
    return RunMode.MULTIRUN if multirun else RunMode.RUN


def _check_sweep(loader, overrides: list[str], run: bool) -> list[ExperimentConfig]:
    master = loader.load_configuration(CONFIG_NAME, overrides, run_mode=_run_mode(True))
    task = OmegaConf.to_container(master.hydra.overrides.task, resolve=False)
    if master.hydra.sweeper.get("_target_") != BASIC_SWEEPER:
        # another sweeper (optuna, ...) chooses its jobs as it goes: check the base config
        return [_check_job(loader.load_configuration(
            CONFIG_NAME, [o for o in task if not _is_sweep(o)], run_mode=_run_mode()),
            None, None, run)]
    # exactly what BasicSweeper.sweep() does: sweeper params first, then the command line
    params = master.hydra.sweeper.get("params") or {}
    arguments = [f"{k}={v}" for k, v in params.items()] + list(task)
    parsed = OverridesParser.create(config_loader=loader).parse_overrides(arguments)
    jobs = [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
    configs = []
    for num, job_overrides in enumerate(jobs):
        try:
            cfg = loader.load_sweep_config(master, list(job_overrides))
            configs.append(_check_job(cfg, num, master, run))
        except (HydraException, OmegaConfBaseException, ConfigError) as exc:
            where = " ".join(job_overrides)
            raise UsageError(f"{describe_error(exc)} (job #{num}: {where})") from None
    return configs


def _is_sweep(override: str) -> bool:
    parsed = OverridesParser.create().parse_overrides([override])[0]
    return parsed.is_sweep_override()


def _check_job(cfg: DictConfig, num: Optional[int], master: Optional[DictConfig],
               run: bool = True):
    """Resolve the job's config as Hydra will (``${hydra:runtime.output_dir}``) and
    validate it against the schema; for a job that will run, against the machine too."""
    with open_dict(cfg):
        if num is None:
            dir_key, out_dir = "hydra.run.dir", cfg.hydra.run.dir
        else:
            cfg.hydra.job.num = num
            cfg.hydra.job.id = str(num)
            dir_key = "hydra.sweep.dir"
            out_dir = os.path.join(cfg.hydra.sweep.dir, cfg.hydra.sweep.subdir)
        cfg.hydra.runtime.output_dir = os.path.abspath(str(out_dir))
    if run:
        _check_job_dir(dir_key, cfg.hydra.runtime.output_dir)
    HydraConfig.instance().set_config(cfg)
    try:
        job = OmegaConf.masked_copy(cfg, [k for k in cfg.keys() if k != "hydra"])
        raw = OmegaConf.to_container(job, resolve=True)
    finally:
        HydraConfig.instance().cfg = None
    exp = to_config(raw)
    if run:
        check_worker_cap(exp, by_memory=False)  # too many for the cores: the plainest reason
        check_resources(exp)        # the whole run's memory and output, with the figures
        check_worker_cap(exp)       # the workers' share of the memory
        _check_output_root(exp)
    return exp


def _check_output_root(exp: ExperimentConfig) -> None:
    """What in ``out`` would stop the run clearing it (a symlinked day directory, a
    manifest cdrexp did not write): one line now, not a FAILED run later."""
    from ..writers import OutputError, check_output_root   # pyarrow: only for a run
    try:
        check_output_root(exp)
    except OutputError as exc:
        raise ConfigError(f"out: {exc.strerror or exc}") from None


def _check_job_dir(key: str, job_dir: str) -> None:
    """Hydra creates the job's directory before the job runs, and fails with a traceback
    (or, with -m, minutes of retries) where it cannot: say so first, in one line."""
    try:
        check_writable(key, job_dir)
    except ConfigError:
        cwd = os.getcwd()
        inside = os.path.commonpath([cwd, job_dir]) == cwd
        try:
            check_writable("working directory", cwd)
        except ConfigError as exc:
            if inside:
                reason = str(exc).split("(", 1)[-1].rstrip(")")
                raise UsageError(
                    f"working directory {cwd} is not writable ({reason}); cdrexp writes "
                    f"each run's directory there ({os.path.relpath(job_dir, cwd)}) and, "
                    f"by default, mlflow.db: run it from a writable directory") from None
        raise


def prepare_tracking(configs: Sequence[ExperimentConfig], base_dir: str) -> None:
    """Open every store the jobs will log to (creating and migrating a new one) before
    Hydra starts; ``UsageError`` naming the first one that cannot be used. The checks
    that need no MLflow client come first: they fail in a second, not after its import."""
    from ..tracking import say_orphans
    from ..tracking.store import StoreUnusable, check_location, open_store
    from .display import quiet_mlflow
    stores = list(dict.fromkeys((e.tracking.uri, e.tracking.experiment_name)
                                for e in configs))
    try:
        for uri, _ in stores:
            check_location(uri, base_dir)
        quiet_mlflow()
        opened = [open_store(uri, base_dir, experiment) for uri, experiment in stores]
    except StoreUnusable as exc:
        raise UsageError(str(exc)) from None
    for store in {s.uri: s for s in opened}.values():
        say_orphans(store.client, "cdrexp")


def prepare_outputs(configs: Sequence[ExperimentConfig]) -> None:
    """Every ``out`` that is a URL (``s3://...``) takes a test object: a missing bucket,
    refused credentials or a server that does not answer is one line before any work."""
    from ..writers import OutputError, check_url_root
    for out in dict.fromkeys(e.out for e in configs if "://" in e.out):
        try:
            check_url_root(out)
        except OutputError as exc:
            raise UsageError(f"out: {exc.strerror or exc}") from None
