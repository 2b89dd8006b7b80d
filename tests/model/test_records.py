"""generate_unit: the records of cdr-model.md sections 3-4 and the properties of section 7."""
import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from scipy import stats

from cdrexp.config import RATS
from cdrexp.model import RECORD_SCHEMA, Population, build_population, generate_unit
from cdrexp.model._events import talk_lognormal
from cdrexp.model.records import todays_imeis
from model_helpers import P_FLOOR, day_table, luhn_valid, model_cfg, unit_for

Z = 4.5   # two-sided normal bound matching P_FLOOR


def rows(table, event_type):
    return table.filter(pc.equal(table["event_type"].cast(pa.string()), event_type))


def strings(column):
    return np.asarray(column.cast(pa.string()).to_pylist(), dtype=object)


def assert_shares(observed_labels, labels, probs):
    counts = np.array([np.sum(observed_labels == x) for x in labels])
    assert counts.sum() == observed_labels.size, "a label outside the configured ones"
    probs = np.asarray(probs, dtype=float)
    keep = probs > 0
    assert np.all(counts[~keep] == 0)
    expected = probs[keep] / probs[keep].sum() * counts.sum()
    assert stats.chisquare(counts[keep], expected).pvalue > P_FLOOR, (counts, expected)


def assert_binomial(successes, trials, p):
    assert stats.binomtest(int(successes), int(trials), p).pvalue > P_FLOOR, \
        (successes, trials, p)


# --- layout -------------------------------------------------------------------------

def test_schema_order_and_nulls(weekday_table):
    t = weekday_table
    assert t.schema.equals(RECORD_SCHEMA)
    types = strings(t["event_type"])
    for name, present_for in [("msisdn_dst", {"CALL", "SMS"}), ("sms_segments", {"SMS"}),
                              ("sms_status", {"SMS"}), ("data_bytes_in", {"DATA"}),
                              ("data_bytes_out", {"DATA"}), ("data_duration_sec", {"DATA"}),
                              ("apn", {"DATA"}), ("rat", {"DATA"})]:
        valid = t[name].is_valid().to_numpy(zero_copy_only=False)
        assert np.array_equal(valid, np.isin(types, list(present_for))), name
    for name in ("msisdn_src", "start_ts_ms", "imsi", "imei", "cell_id", "record_type"):
        assert t[name].null_count == 0, name


def test_each_unit_is_sorted_with_consistent_times(default_cfg, default_population):
    t = generate_unit(default_cfg, default_population, unit_for(default_cfg, "2025-01-06", 1))
    start, end = t["start_ts_ms"].to_numpy(), t["end_ts_ms"].to_numpy()
    assert np.all(np.diff(start) >= 0)
    assert np.all(start % 1000 == 0)
    assert np.array_equal(end - start, t["duration_sec"].to_numpy().astype(np.int64) * 1000)
    assert set(strings(t["tz_name"])) == {"Europe/Amsterdam"}
    # every record lies in the local date 2025-01-06 (Amsterdam is UTC+1 in January)
    local_day = (start // 1000 + 3600) // 86_400
    assert np.all(local_day == dt.date(2025, 1, 6).toordinal() - dt.date(1970, 1, 1).toordinal())


# --- P1 volume, P2 coverage ---------------------------------------------------------

@pytest.mark.parametrize("date, factor", [("2025-01-06", 0.95), ("2025-07-07", 1.20)])
def test_p1_volume_per_type_is_poisson(default_cfg, default_population, date, factor):
    t = day_table(default_cfg, default_population, date)
    m, subs = default_cfg.model, default_cfg.subs
    for etype, mean in [("CALL", m.avg_calls_per_user), ("SMS", m.avg_sms_per_user),
                        ("DATA", m.avg_data_sessions_per_user)]:
        expected = subs * mean * factor
        count = rows(t, etype).num_rows
        assert 0.8 * expected <= count <= 1.2 * expected                  # the spec's P1
        assert abs(count - expected) < Z * math.sqrt(expected), (etype, count, expected)


def test_special_days_scale_volume(default_population):
    cfg = model_cfg(special_days={"2025-01-07": 2.5})
    normal = day_table(cfg, default_population, "2025-01-06").num_rows
    special = day_table(cfg, default_population, "2025-01-07").num_rows
    expected = cfg.subs * 20.7 * 0.95
    assert abs(normal - expected) < Z * math.sqrt(expected)
    assert abs(special - 2.5 * expected) < Z * math.sqrt(2.5 * expected)


def test_p2_data_coverage(weekday_table, default_cfg):
    data = rows(weekday_table, "DATA")
    assert pc.count_distinct(data["msisdn_src"]).as_py() >= 0.99 * default_cfg.subs


def test_activity_sigma_keeps_mean_volume():
    cfg = model_cfg(subs=4000, activity_sigma=1.0)
    pop = build_population(cfg)
    t = day_table(cfg, pop, "2025-01-06")
    # the total is Poisson with the summed activity of these subscribers...
    expected = 20.7 * 0.95 * float(pop.activity.astype(np.float64).sum())
    assert abs(t.num_rows - expected) < Z * math.sqrt(expected)
    # ...which is about subs (mean activity 1, lognormal sd sqrt(e - 1))
    sd = math.sqrt(math.e - 1.0)
    assert abs(pop.activity.mean() - 1.0) < Z * sd / math.sqrt(cfg.subs)
    # and per-subscriber volumes follow the activity (heavy users make more records)
    data = rows(t, "DATA")
    per_sub = np.bincount(pc.index_in(data["msisdn_src"], pa.array(pop.msisdn)).to_numpy(),
                          minlength=cfg.subs)
    assert stats.spearmanr(per_sub, pop.activity).statistic > 0.5


def rows_mask(table, event_type):
    return strings(table["event_type"]) == event_type


# --- P3 identity --------------------------------------------------------------------

def test_p3_identities(weekday_table, default_population):
    t, pop = weekday_table, default_population
    imei = t["imei"].to_numpy()
    assert all(luhn_valid(int(x)) for x in np.unique(imei))
    cells = t["cell_id"].to_numpy()
    assert cells.min() >= 1 and cells.max() <= pop.cells
    # imsi / mccmnc / msisdn of the served subscriber belong together
    data = rows(t, "DATA")
    at = pc.index_in(data["msisdn_src"], pa.array(pop.msisdn)).to_numpy(zero_copy_only=False)
    assert np.array_equal(pop.imsi[at], data["imsi"].to_numpy())
    assert np.array_equal(pop.mccmnc[at], data["mccmnc"].to_numpy())
    # a DATA record's cell has the record's RAT
    cell_rat = np.asarray(RATS)[pop.cell_rat[data["cell_id"].to_numpy() - 1]]
    assert np.array_equal(cell_rat, strings(data["rat"]))


def test_counterparties(weekday_table, default_population, default_cfg):
    t, pop, m = weekday_table, default_population, default_cfg.model
    voice = t.filter(pc.invert(rows_mask_array(t, "DATA")))
    mo = strings(voice["direction"]) == "MO"
    src, dst = voice["msisdn_src"].to_numpy(), voice["msisdn_dst"].to_numpy()
    me, other = np.where(mo, src, dst), np.where(mo, dst, src)
    onnet_numbers = set(pop.msisdn.tolist())
    assert set(me.tolist()) <= onnet_numbers
    assert np.all(me != other)                                     # never oneself
    is_onnet = np.isin(other, pop.msisdn)
    offnet = other[~is_onnet]
    prefix_ok = np.isin(offnet // 10**7, m.offnet_prefixes)
    assert np.all(prefix_ok)                                       # off-net: its prefixes
    assert not np.any(np.isin(other[is_onnet] // 10**7, m.offnet_prefixes))
    k0 = np.mean(pop.n_contacts == 0)
    p_offnet = m.interconnect_share + (1 - m.interconnect_share) * k0
    assert_binomial((~is_onnet).sum(), other.size, p_offnet)
    assert_binomial(mo[strings(voice["event_type"]) == "CALL"].sum(),
                    np.sum(strings(voice["event_type"]) == "CALL"), m.mo_share_call)


def rows_mask_array(table, event_type):
    return pa.array(rows_mask(table, event_type))


def test_home_cell_share(weekday_table, default_population, default_cfg):
    t, pop = weekday_table, default_population
    voice = t.filter(pc.invert(rows_mask_array(t, "DATA")))
    mo = strings(voice["direction"]) == "MO"
    me = np.where(mo, voice["msisdn_src"].to_numpy(), voice["msisdn_dst"].to_numpy())
    at = pc.index_in(pa.array(me), pa.array(pop.msisdn)).to_numpy(zero_copy_only=False)
    at_home = voice["cell_id"].to_numpy() - 1 == pop.home_cell[at]
    share = default_cfg.model.home_cell_share
    assert_binomial(at_home.sum(), at_home.size, share + (1 - share) / pop.cells)


# --- P5 distributions -------------------------------------------------------------

def test_call_dispositions_and_durations(weekday_table, default_cfg):
    calls, m = rows(weekday_table, "CALL"), default_cfg.model
    cause = strings(calls["cause_for_record_closing"])
    d = m.call_dispositions
    assert_shares(cause, ["normalRelease", "noAnswer", "busy", "failure"],
                  [d.ANSWERED, d.NO_ANSWER, d.BUSY, d.FAILED + d.CONGESTION])
    assert set(strings(calls["record_type"])) == {"mscVoiceRecord"}
    dur = calls["duration_sec"].to_numpy()
    for name, lo, hi in [("noAnswer", 5, 30), ("busy", 2, 10), ("failure", 1, 5)]:
        x = dur[cause == name]
        assert x.min() >= lo and x.max() <= hi, name
        assert stats.chisquare(np.bincount(x - lo, minlength=hi - lo + 1)).pvalue > P_FLOOR
    answered = dur[cause == "normalRelease"]
    assert answered.min() >= 3                                    # ring >= 2 + talk >= 1
    # duration = ring U{2..25} + trunc(max(LogNormal, 1)): its exact CDF at the points
    # where it crosses 0.5 and 0.9 vs the observed shares (binomial bounds)
    mu, sigma = talk_lognormal(m)
    def cdf(x):   # P(ring + talk <= x), talk <= t  <=>  LogNormal < t + 1
        return sum(stats.norm.cdf((np.log(x - r + 1) - mu) / sigma) / 24
                   for r in range(2, 26) if x - r >= 1)
    for target in (0.5, 0.9):
        x = next(v for v in range(3, 5000) if cdf(v) >= target)
        assert_binomial(np.sum(answered <= x), answered.size, cdf(x))


def test_talk_lognormal_parameters():
    from cdrexp.config import ModelConfig
    from cdrexp.config._schema import DurationQuantiles
    mu, sigma = talk_lognormal(ModelConfig())
    assert mu == pytest.approx(math.log(75))
    assert sigma == pytest.approx(math.log(240 / 75) / 1.2815515655446004)
    assert talk_lognormal(ModelConfig(call_duration_quantiles=DurationQuantiles(60, 61)))[1] == 0.2
    assert talk_lognormal(ModelConfig(call_duration_quantiles=DurationQuantiles(1, 1e6)))[1] == 2.0


def test_sms_fields(weekday_table, default_cfg):
    sms, m = rows(weekday_table, "SMS"), default_cfg.model
    status = strings(sms["sms_status"])
    s = m.sms_status
    assert_shares(status, ["SENT", "DELIVERED", "FAILED"], [s.SENT, s.DELIVERED, s.FAILED])
    cause = strings(sms["cause_for_record_closing"])
    assert np.array_equal(cause == "deliveryFailure", status == "FAILED")
    assert set(cause) <= {"deliveryFailure", "deliverySuccess"}
    assert_shares(sms["sms_segments"].to_numpy(), [1, 2, 3], m.sms_segments)
    direction, rtype = strings(sms["direction"]), strings(sms["record_type"])
    assert np.array_equal(rtype == "sgsnSMORecord", direction == "MO")
    assert np.array_equal(rtype == "sgsnSMTRecord", direction == "MT")
    assert_binomial(np.sum(direction == "MO"), direction.size, m.mo_share_sms)
    dur = sms["duration_sec"].to_numpy()
    assert stats.chisquare(np.bincount(dur - 1, minlength=5)).pvalue > P_FLOOR
    assert dur.max() <= 5


def test_data_fields(weekday_table, default_cfg):
    data, m = rows(weekday_table, "DATA"), default_cfg.model
    rat = strings(data["rat"])
    r = m.data_rat_shares
    assert_shares(rat, list(RATS), [r.WCDMA, r.LTE, r.NR])
    a = m.apn_shares
    assert_shares(strings(data["apn"]), ["internet", "ims", "mms"], [a.internet, a.ims, a.mms])
    rtype = strings(data["record_type"])
    assert set(rtype) <= {"pgwRecord", "sgsnPDPRecord"}
    assert_binomial(np.sum(rtype == "pgwRecord"), rtype.size, m.data_pgw_share)
    assert set(strings(data["direction"])) == {"MO"}
    assert set(strings(data["cause_for_record_closing"])) == {"normalRelease"}
    dur, up, down = (data[c].to_numpy() for c in ("data_duration_sec", "data_bytes_in",
                                                   "data_bytes_out"))
    assert np.array_equal(dur, data["duration_sec"].to_numpy())
    assert dur.min() >= 5 and down.min() >= 2000 and up.min() >= 1000
    for name in RATS:
        p = getattr(m.data_rat_profiles, name)
        sel = rat == name
        ratio = up[sel] / down[sel]
        big = down[sel] * p.uplink_ratio_min > 1000        # the 1000-byte floor not in play
        assert ratio[big].min() >= p.uplink_ratio_min - 1e-3
        assert ratio[big].max() <= p.uplink_ratio_max + 1e-3
        # means of the folded normals (the floors move them by far less than an SE)
        for x, mean, sd in [(dur[sel], p.duration_mean, p.duration_sd),
                            (down[sel], p.downlink_mean, p.downlink_sd)]:
            folded = sd * math.sqrt(2 / math.pi) * math.exp(-mean**2 / (2 * sd**2)) \
                + mean * (1 - 2 * stats.norm.cdf(-mean / sd))
            assert abs(x.mean() - folded) < Z * sd / math.sqrt(x.size) + 1.0, name


# --- devices ------------------------------------------------------------------------

def test_imei_changes_persist_across_days(default_population):
    cfg = model_cfg(imei_daily_change_prob=0.3)
    pop = default_population
    idx = np.arange(cfg.subs)
    by_day = [todays_imeis(cfg.seed, pop, idx, d, 0.3) for d in range(5)]
    assert np.array_equal(by_day[0], pop.imei)
    seen = [{int(x)} for x in by_day[0]]
    for prev, cur in zip(by_day, by_day[1:]):
        changed = cur != prev
        assert_binomial(changed.sum(), cfg.subs, 0.3)
        for i in np.flatnonzero(changed):                 # a new device, never an old one
            assert int(cur[i]) not in seen[i]
            seen[i].add(int(cur[i]))
    # the records of day 3 carry that day's IMEI
    t = generate_unit(cfg, pop, unit_for(cfg, "2025-01-09", 0, day_index=3))
    data = rows(t, "DATA")
    at = pc.index_in(data["msisdn_src"], pa.array(pop.msisdn)).to_numpy(zero_copy_only=False)
    assert np.array_equal(data["imei"].to_numpy(), by_day[3][at])


# --- mirrored calls -------------------------------------------------------------------

@pytest.mark.parametrize("day_index, change_prob", [(0, 0.02), (4, 0.5)])
def test_mirror_onnet_calls(default_population, day_index, change_prob):
    pop = default_population
    plain_cfg = model_cfg(imei_daily_change_prob=change_prob)
    cfg = model_cfg(mirror_onnet_calls=True, imei_daily_change_prob=change_prob)
    unit = unit_for(cfg, "2025-01-06", 0, day_index)
    everyone = np.arange(cfg.subs)
    imei_today = todays_imeis(cfg.seed, pop, everyone, day_index, change_prob)
    plain, mirrored = generate_unit(plain_cfg, pop, unit), generate_unit(cfg, pop, unit)
    calls = rows(plain, "CALL")
    onnet = np.isin(calls["msisdn_src"].to_numpy(), pop.msisdn) & \
        np.isin(calls["msisdn_dst"].to_numpy(), pop.msisdn)
    assert mirrored.num_rows == plain.num_rows + onnet.sum()
    # a mirrored pair: same call, opposite direction, the other party's identity
    m = mirrored.to_pydict()
    pairs = 0
    for i in range(mirrored.num_rows - 1):
        a, b = {k: v[i] for k, v in m.items()}, {k: v[i + 1] for k, v in m.items()}
        if a["event_type"] == "CALL" and a["direction"] != b["direction"] and \
                b["event_type"] == "CALL" and a["msisdn_src"] == b["msisdn_src"] and \
                a["msisdn_dst"] == b["msisdn_dst"] and a["start_ts_ms"] == b["start_ts_ms"]:
            pairs += 1
            for key in ("end_ts_ms", "duration_sec", "cause_for_record_closing"):
                assert a[key] == b[key]
            served_b = b["msisdn_dst"] if b["direction"] == "MT" else b["msisdn_src"]
            j = int(np.flatnonzero(pop.msisdn == served_b)[0])
            assert b["imsi"] == pop.imsi[j] and b["mccmnc"] == pop.mccmnc[j]
            assert b["imei"] == imei_today[j]                     # the device of that day
            served_a = a["msisdn_src"] if a["direction"] == "MO" else a["msisdn_dst"]
            assert a["imei"] == imei_today[int(np.flatnonzero(pop.msisdn == served_a)[0])]
    assert pairs == onnet.sum()
    assert np.all(np.diff(mirrored["start_ts_ms"].to_numpy()) >= 0)


# --- determinism (P4 at unit level) ---------------------------------------------------

def test_units_are_deterministic_and_independent(default_cfg, default_population):
    unit = unit_for(default_cfg, "2025-01-06", 2)
    first = generate_unit(default_cfg, default_population, unit)
    generate_unit(default_cfg, default_population, unit_for(default_cfg, "2025-01-06", 0))
    copies = {k: v.copy() for k, v in default_population.arrays().items()}
    for array in copies.values():   # as in shared memory mapped read-only: never written
        array.setflags(write=False)
    rebuilt = Population.from_arrays(copies)
    assert generate_unit(default_cfg, rebuilt, unit).equals(first)
    other_seed = model_cfg(seed=8)
    assert not generate_unit(other_seed, build_population(other_seed), unit).equals(first)
    other_day = generate_unit(default_cfg, default_population,
                              unit_for(default_cfg, "2025-01-07", 2))
    a = first["start_ts_ms"].to_numpy() % 86_400_000
    b = other_day["start_ts_ms"].to_numpy() % 86_400_000
    assert first.num_rows != other_day.num_rows or not np.array_equal(a, b)


def test_empty_unit_when_rates_are_zero(default_population):
    cfg = model_cfg(avg_calls_per_user=0, avg_sms_per_user=0, avg_data_sessions_per_user=0)
    t = generate_unit(cfg, default_population, unit_for(cfg, "2025-01-06", 0))
    assert t.num_rows == 0 and t.schema.equals(RECORD_SCHEMA)


# --- every model key acts on the records -------------------------------------------

def _voice(t):
    return t.filter(pc.invert(rows_mask_array(t, "DATA")))


def _counterparty(t):
    v = _voice(t)
    mo = strings(v["direction"]) == "MO"
    return np.where(mo, v["msisdn_dst"].to_numpy(), v["msisdn_src"].to_numpy())


HONOURED = [
    ({"mo_share_call": 1.0}, lambda t, p: set(strings(rows(t, "CALL")["direction"])) == {"MO"}),
    ({"mo_share_sms": 0.0}, lambda t, p: set(strings(rows(t, "SMS")["direction"])) == {"MT"}),
    ({"interconnect_share": 1.0},
     lambda t, p: not np.any(np.isin(_counterparty(t), p.msisdn))),
    ({"contacts_mean": 0.0}, lambda t, p: not np.any(np.isin(_counterparty(t), p.msisdn))),
    ({"interconnect_share": 0.0},     # off-net only for the few without contacts
     lambda t, p: np.array_equal(~np.isin(_counterparty(t), p.msisdn),
                                 p.n_contacts[_served_index(_voice(t), p)] == 0)),
    ({"offnet_prefixes": [4477]},
     lambda t, p: set((_counterparty(t)[~np.isin(_counterparty(t), p.msisdn)] // 10**7)
                      .tolist()) == {4477}),
    ({"call_dispositions": {"ANSWERED": 0.0, "NO_ANSWER": 0.0, "BUSY": 1.0, "FAILED": 0.0,
                            "CONGESTION": 0.0}},
     lambda t, p: set(strings(rows(t, "CALL")["cause_for_record_closing"])) == {"busy"}),
    ({"sms_segments": [0.0, 0.0, 1.0]},
     lambda t, p: set(rows(t, "SMS")["sms_segments"].to_pylist()) == {3}),
    ({"sms_status": {"SENT": 0.0, "DELIVERED": 0.0, "FAILED": 1.0}},
     lambda t, p: set(strings(rows(t, "SMS")["cause_for_record_closing"])) == {"deliveryFailure"}),
    ({"data_pgw_share": 0.0},
     lambda t, p: set(strings(rows(t, "DATA")["record_type"])) == {"sgsnPDPRecord"}),
    ({"apn_shares": {"internet": 0.0, "ims": 1.0, "mms": 0.0}},
     lambda t, p: set(strings(rows(t, "DATA")["apn"])) == {"ims"}),
    ({"data_rat_shares": {"WCDMA": 0.0, "LTE": 0.0, "NR": 1.0}},
     lambda t, p: set(strings(rows(t, "DATA")["rat"])) == {"NR"}),
    ({"home_cell_share": 1.0, "cell_rat_shares": {"WCDMA": 0.0, "LTE": 1.0, "NR": 0.0},
      "data_rat_shares": {"WCDMA": 0.0, "LTE": 1.0, "NR": 0.0}},
     lambda t, p: np.array_equal(
         t["cell_id"].to_numpy() - 1,
         p.home_cell[pc.index_in(rows_owner(t), pa.array(p.msisdn)).to_numpy()])),
    ({"call_duration_quantiles": {"p50": 1000.0, "p90": 1001.0}},
     lambda t, p: np.median(rows(t, "CALL").filter(pc.equal(rows(t, "CALL")[
         "cause_for_record_closing"].cast(pa.string()), "normalRelease"))[
         "duration_sec"].to_numpy()) > 900),
    ({"data_rat_profiles": {"LTE": {"duration_mean": 5000.0, "duration_sd": 1.0}},
      "data_rat_shares": {"WCDMA": 0.0, "LTE": 1.0, "NR": 0.0}},
     lambda t, p: np.all(np.abs(rows(t, "DATA")["duration_sec"].to_numpy() - 5000) < 10)),
    ({"tz_name": "America/New_York"},
     lambda t, p: set(t["tz_offset_min"].to_pylist()) == {-300}
     and set(strings(t["tz_name"])) == {"America/New_York"}),
    ({"diurnal_weekday": [0.0] * 12 + [1.0] + [0.0] * 11},     # everything at 12:xx local
     lambda t, p: set(((t["start_ts_ms"].to_numpy() // 1000 + 3600) % 86_400 // 3600)
                      .tolist()) == {12}),
    ({"prefixes": [31699], "mccmnc_pool": [20401]},
     lambda t, p: set((rows(t, "DATA")["msisdn_src"].to_numpy() // 10**7).tolist()) == {31699}
     and set(t["mccmnc"].to_pylist()) == {20401}),
]


def _served_index(t, p):
    return pc.index_in(rows_owner(t), pa.array(p.msisdn)).to_numpy()


def rows_owner(t):
    """The served subscriber's MSISDN of every record."""
    mo = strings(t["direction"]) == "MO"
    return pa.array(np.where(mo, t["msisdn_src"].to_numpy(),
                             t["msisdn_dst"].fill_null(0).to_numpy()))


@pytest.mark.parametrize("overrides, holds", HONOURED,
                         ids=[",".join(o) for o, _ in HONOURED])
def test_model_keys_are_honoured(overrides, holds):
    from cdrexp.config import GeneratorConfig, to_config, validate_model
    cfg = to_config({"subs": 600, "start": "2025-01-06", "seed": 3,
                     "model": {"chunk_size": 600, **overrides}}, GeneratorConfig,
                    validate_all=False)
    validate_model(cfg.model, cfg.subs)
    pop = build_population(cfg)
    t = generate_unit(cfg, pop, unit_for(cfg, "2025-01-06", 0))
    assert t.num_rows > 10_000
    assert holds(t, pop)
