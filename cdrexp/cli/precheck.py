"""Check a command line before Hydra runs it: compose every job's config and validate it.

Hydra reports a bad override only after it has created the job's output directory, with
a multi-line message and exit code 1; a bad value (``days=0``) it does not see at all.
So ``main`` composes the config(s) here first, with Hydra's own config loader and, for
``-m``, the basic sweeper's own expansion, so every job of a sweep is checked, and turns
the first problem into one line ``cdrexp: error: <key>: <problem>``, exit code 2.

A command that will run jobs is also checked against this machine: Hydra's job
directory can be created (a read-only working directory), the worker processes fit
(``check_worker_cap``), and ``prepare_tracking`` opens (creates, migrates) the tracking
store before Hydra starts, so an unusable store is one line too.
"""
from __future__ import annotations

import argparse
import os
import re
from typing import Optional, Sequence

from hydra import initialize_config_module
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from ..conf import CONFIG_MODULE, CONFIG_NAME
from ..config import (ConfigError, ExperimentConfig, check_worker_cap, check_writable,
                      to_config)

HYDRA_VERSION_BASE = "1.3"
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


class UsageError(Exception):
    """A bad command line; ``str()`` is the one line to show."""


class _ArgParser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print usage and exit
        raise UsageError(message)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Hydra's own flags (``-m``, ``--cfg``, ``--info``, ...) and the overrides."""
    hydra_parser = get_args_parser()
    parser = _ArgParser(add_help=False, parents=[hydra_parser])
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
    except (HydraException, OmegaConfBaseException, ConfigError, ValueError) as exc:
        raise UsageError(describe_error(exc)) from None
    finally:
        GlobalHydra.instance().clear()


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
        except (HydraException, OmegaConfBaseException, ConfigError, ValueError) as exc:
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
        check_worker_cap(exp)
    return exp


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
    from ..tracking.store import StoreUnusable, check_location, open_store
    from .display import quiet_mlflow
    stores = list(dict.fromkeys((e.tracking.uri, e.tracking.experiment_name)
                                for e in configs))
    try:
        for uri, _ in stores:
            check_location(uri, base_dir)
        quiet_mlflow()
        for uri, experiment in stores:
            open_store(uri, base_dir, experiment)
    except StoreUnusable as exc:
        raise UsageError(str(exc)) from None


def prepare_outputs(configs: Sequence[ExperimentConfig]) -> None:
    """Every ``out`` that is a URL (``s3://...``) takes a test object: a missing bucket,
    refused credentials or a server that does not answer is one line before any work."""
    from ..writers import OutputError, check_url_root
    for out in dict.fromkeys(e.out for e in configs if "://" in e.out):
        try:
            check_url_root(out)
        except OutputError as exc:
            raise UsageError(f"out: {exc.strerror or exc}") from None


# ---- turning Hydra's and OmegaConf's multi-line errors into one line -------------------

_CONVERT = re.compile(r"Value '(.*)' of type '(\w+)' could not be converted to (\w+)")
_NOT_IN = re.compile(r"Key '(.+?)' (?:is )?not in")
_MISSING_OPTION = re.compile(r"Could not find '(.+)/([^/']+)'")
_LOAD_FAIL = re.compile(r"Could not load '(.+)/([^/']+)'")
_NO_MATCH = re.compile(r"Could not override '(.+?)'\. No match in the defaults list")
_AMBIGUOUS = re.compile(r"Ambiguous value for argument '([^=]+)=(.*)'")
_PARSE = re.compile(r"Error parsing override '(.*)'")
_LEXER = re.compile(r"LexerNoViableAltException: (.*)")
_MISSING_VALUE = re.compile(r"Missing mandatory value: ?(.*)")

_ARTICLE = {"Integer": "an integer", "Float": "a number", "Boolean": "true or false",
            "String": "a string"}


def describe_error(exc: BaseException) -> str:
    """One line, ``<key>: <problem>``, for the errors composing or validating can raise."""
    if isinstance(exc, ConfigError):
        return _rephrase(str(exc))
    text = str(exc)
    m = _MISSING_OPTION.search(text) or _LOAD_FAIL.search(text)
    if isinstance(exc, MissingConfigException) and m:
        group, option = m.group(1), m.group(2)
        choices = _available_options(text)
        return (f"{group}: unknown option {option!r}"
                + (f"; choose one of {', '.join(choices)}" if choices else ""))
    if m := _NO_MATCH.search(text):
        key = m.group(1)
        return f"{key}: not in the defaults list; add it with +{key}=<option>"
    if m := _AMBIGUOUS.search(text):
        return (f"{m.group(1)}: {m.group(2)!r} is several values; add -m to sweep over "
                f"them, or write a list as [a,b]")
    if m := _LEXER.match(text):
        return _unparsable(m.group(1))
    if m := _PARSE.search(text):
        return (f"{m.group(1)}: not a valid override (key=value; see "
                f"https://hydra.cc/docs/advanced/override_grammar/basic/)")
    cause = exc.__cause__ if isinstance(exc.__cause__, OmegaConfBaseException) else exc
    if isinstance(cause, OmegaConfBaseException):
        key = getattr(cause, "full_key", None) or getattr(cause, "key", None)
        first = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        return _rephrase(f"{key}: {first}" if key else first)
    return _rephrase(text.strip().splitlines()[0] if text.strip() else type(exc).__name__)


def _unparsable(override: str) -> str:
    """Hydra's lexer stops at a character it has no rule for; the usual one is non-ASCII,
    which the grammar accepts only inside quotes."""
    key, _, value = override.partition("=")
    odd = next((c for c in override if not c.isascii()), None)
    if odd is None:
        return (f"{override}: not a valid override (key=value; see "
                f"https://hydra.cc/docs/advanced/override_grammar/basic/)")
    if odd in key:
        return (f"{override}: {odd!r} in a key: keys are ASCII names (python -m cdrexp "
                f"--cfg job lists every key)")
    return (f"{override}: {odd!r} is allowed only in a quoted value: write "
            f"{key}='{value}'")


def _available_options(text: str) -> list[str]:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Available options in"):
            options = []
            for x in lines[i + 1:]:
                if not x.startswith("\t"):
                    break
                options.append(x.strip())
            return options
    return []


def _rephrase(line: str) -> str:
    """OmegaConf's wording, said in terms of the command line."""
    key, sep, msg = line.partition(": ")
    if not sep:
        return line
    if m := _CONVERT.search(msg):
        value, kind = m.group(1), m.group(3)
        return f"{key}: must be {_ARTICLE.get(kind, kind.lower())}, got {value!r}"
    if _NOT_IN.search(msg):
        return f"{key}: unknown key (python -m cdrexp --cfg job lists every key)"
    if m := _MISSING_VALUE.search(msg):
        return f"{key}: needs a value"
    return f"{key}: {msg}"
