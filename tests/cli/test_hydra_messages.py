"""The pre-check leans on Hydra's internals (its argument parser, the basic sweeper's
expansion) and on the wording of its messages: pinned to the versions it was written
against, so that an upgrade shows here first, not as a traceback or a worse message."""
import hydra
import pytest

from cdrexp.cli._hydra_messages import (KNOWN_HYDRA_VERSIONS, describe_error,
                                        describe_os_error, describe_value_error)


def test_hydra_is_a_version_the_precheck_knows():
    assert hydra.__version__ in KNOWN_HYDRA_VERSIONS, (
        f"Hydra {hydra.__version__}: check cdrexp/cli/precheck.py's use of "
        "hydra._internal (get_args_parser, BasicSweeper.split_arguments) and the message "
        "patterns of cdrexp/cli/_hydra_messages.py (tests/cli/test_bad_input.py), then "
        "add the version to KNOWN_HYDRA_VERSIONS")


def test_the_internals_the_precheck_uses_are_there():
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra._internal.utils import get_args_parser
    assert callable(BasicSweeper.split_arguments)
    args = get_args_parser().parse_args(["-m", "subs=1"])
    assert args.multirun and args.overrides == ["subs=1"]


def test_an_os_error_other_than_a_long_name_is_left_alone():
    assert describe_os_error(PermissionError(13, "denied", "/x"), ["subs=1"]) is None


def test_a_value_error_other_than_the_digit_limit_is_left_alone():
    assert describe_value_error(ValueError("a bug"), ["subs=1"]) is None


@pytest.mark.parametrize("text, line", [
    ("Key 'nonesuch' is not in struct", "x: unknown key"),
    ("Value 'abc' of type 'str' could not be converted to Integer",
     "x: must be an integer, got 'abc'"),
])
def test_omegaconf_wording_is_rephrased(text, line):
    from cdrexp.config import ConfigError
    assert describe_error(ConfigError(f"x: {text}")).startswith(line)
