"""``python -m cdrexp --help`` fits a screen and tells the truth about the defaults."""
import re
import subprocess
import sys
from pathlib import Path

from cdrexp.config import ExperimentConfig

CONF = Path(__file__).resolve().parents[2] / "cdrexp" / "conf"


def test_help_fits_a_screen_with_the_commands_keys_and_groups():
    proc = subprocess.run([sys.executable, "-m", "cdrexp", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.rstrip("\n").splitlines()
    assert len(lines) <= 40, proc.stdout
    for command in ("python -m cdrexp ", "profiler=pyspy", "python -m cdrexp -m ",
                    "mlflow ui", "python -m cdrexp.compare --compare", "--cfg job"):
        assert command in proc.stdout
    # every group with every option the package ships
    for group in ("model", "output", "profiler", "executor", "experiment"):
        options = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
        assert f"{group}: {', '.join(options)}" in lines
    # the defaults it states are the schema's
    schema = ExperimentConfig()
    for key, value in re.findall(r"\b(subs|days|start|seed|workers|repeats|warmup)=(\S+)",
                                 "\n".join(lines[lines.index("Keys (key=value, default):"):])):
        assert str(getattr(schema, key)) == value, key
