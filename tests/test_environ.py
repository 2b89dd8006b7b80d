"""environ_set: variables for a block, then exactly as before (unset ones unset again)."""
import os

import pytest

from cdrexp._environ import environ_set


def test_values_hold_in_the_block_and_are_put_back_even_after_an_error(monkeypatch):
    monkeypatch.setenv("CDREXP_T_KEPT", "old")
    monkeypatch.delenv("CDREXP_T_NEW", raising=False)
    with pytest.raises(RuntimeError):
        with environ_set({"CDREXP_T_KEPT": "new", "CDREXP_T_NEW": "1"}):
            assert os.environ["CDREXP_T_KEPT"] == "new"
            assert os.environ["CDREXP_T_NEW"] == "1"
            raise RuntimeError
    assert os.environ["CDREXP_T_KEPT"] == "old"
    assert "CDREXP_T_NEW" not in os.environ
