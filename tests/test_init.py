"""Importing cdrexp: numpy's OpenBLAS gets one thread unless the user chose otherwise."""
import json
import os
import subprocess
import sys

import pytest

SHOW = """
import cdrexp, numpy, threadpoolctl
print([i["num_threads"] for i in threadpoolctl.threadpool_info()
       if i["internal_api"] == "openblas"])
"""


@pytest.mark.parametrize("user_value, expected", [(None, [1]), ("2", [2])])
def test_openblas_threads(user_value, expected):
    pytest.importorskip("threadpoolctl")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if user_value is not None:
        env["OPENBLAS_NUM_THREADS"] = user_value
    out = subprocess.run([sys.executable, "-c", SHOW], env=env, check=True,
                         capture_output=True, text=True).stdout
    threads = json.loads(out)
    if not threads:
        pytest.skip("numpy here is not linked to OpenBLAS")
    assert threads == expected
