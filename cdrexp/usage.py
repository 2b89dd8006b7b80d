"""What the three tools (``cdrexp``, ``cdrexp.compare``, ``cdrexp.ab``) share on the command
line: the one-line usage error, a parser that raises it, and one line of an exception.

Light on purpose (argparse only): every tool imports it before its heavy modules.
"""
from __future__ import annotations

import argparse
from typing import Optional

EXIT_INTERRUPTED = 130      # 128 + SIGINT, as a shell reports Ctrl-C


class UsageError(Exception):
    """A bad command line; ``str()`` is the one line to show."""


class RaisingArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors raise ``UsageError`` (argparse would print its
    usage and exit), so the tool prints one line its own way."""

    def error(self, message):
        raise UsageError(message)


def one_line(exc: BaseException, limit: Optional[int] = None) -> str:
    """``<type>: <first line of the message>``, cut at ``limit`` characters."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if limit is None else text[:limit]
