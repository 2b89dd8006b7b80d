"""Fixtures: one temporary MLflow store with synthetic runs (see compare_synthetic)."""
import numpy as np
import pytest

from compare_synthetic import HOUR_MS, SYSTEM_INFO, T0_MS, SyntheticStore, job_config, \
    noisy_samples


@pytest.fixture(scope="session")
def synth_store(tmp_path_factory) -> SyntheticStore:
    """One sqlite store for the whole session (creating one costs seconds); each test
    scenario uses its own experiment in it."""
    return SyntheticStore(tmp_path_factory.mktemp("mlflow_store"))


@pytest.fixture(scope="session")
def scenarios(synth_store) -> dict:
    """Experiments: a 30 % slowdown, a 30 % speed-up, pure noise, trends, and an empty one."""
    s, rng = synth_store, np.random.default_rng(20260101)
    base = {1000: 0.5, 10000: 2.0}
    out = {}
    for name, factor in (("slowdown", 1.3), ("speedup", 1 / 1.3), ("noise", 1.0)):
        exp = s.experiment(name)
        prev = s.add_sweep(exp, base, start_ms=T0_MS, rng=rng, commit="1" * 40,
                           system_info=SYSTEM_INFO)
        cur_medians = {1000: base[1000] * factor, 10000: base[10000]}
        cur = s.add_sweep(exp, cur_medians, start_ms=T0_MS + HOUR_MS, rng=rng,
                          commit="2" * 40, system_info=SYSTEM_INFO)
        out[name] = {"exp": exp, "prev": prev, "cur": cur}
    # a failed job after the sweeps must be ignored by --latest and --compare
    s.add_job(out["noise"]["exp"], job_config(1000), [], start_ms=T0_MS + 2 * HOUR_MS,
              status="FAILED")

    exp = s.experiment("trend")
    sweeps = [s.add_sweep(exp, {1000: m}, start_ms=T0_MS + i * HOUR_MS, rng=rng,
                          commit=f"{i}" * 40) for i, m in enumerate((1.0, 1.0, 1.4))]
    out["trend"] = {"exp": exp, "sweeps": sweeps}

    exp = s.experiment("alone")         # two runs that ran alone, different configs
    a = s.add_job(exp, job_config(1000, workers=1), noisy_samples(rng, 1.0),
                  start_ms=T0_MS)
    b = s.add_job(exp, job_config(1000, workers=2), noisy_samples(rng, 0.6),
                  start_ms=T0_MS + HOUR_MS, commit="b" * 40)
    out["alone"] = {"exp": exp, "runs": (a, b)}

    out["empty"] = {"exp": s.experiment("empty")}
    return out
