"""CM EER, min t-DCF and SASV EERs on tiny score sets worked by hand."""
import numpy as np
import pytest

from spkrec.errors import SpkrecError
from spkrec.eval.spoof import (ASVSPOOF2019_COSTS, asv_error_rates, cm_eer, min_tdcf, sasv_eers, tandem_rates,
                               tdcf_curve)


def test_published_costs():
    c = ASVSPOOF2019_COSTS
    assert c["p_tar"] == pytest.approx(0.9405) and c["p_non"] == pytest.approx(0.0095)
    assert (c["p_spoof"], c["c_fa_asv"], c["c_fa_cm"], c["c_miss_asv"], c["c_miss_cm"]) == (0.05, 10, 10, 1, 1)


def test_min_tdcf_hand_worked():
    tar, non, spf_asv = [2, 3, 4, 5], [-1, 0, 1, 2.5], [1, 2, 3, 4]
    assert asv_error_rates(tar, non, spf_asv, 1.5) == (0.25, 0.0, 0.25)
    # C1 = 0.9405 * 1 - 0.0095 * 10 * 0.25 = 0.91675 ; C2 = 10 * 0.05 * 0.75 = 0.375
    bona_cm, spoof_cm = [1, 2, 3], [0, 2.5]
    curve, thr = tdcf_curve(bona_cm, spoof_cm, tar, non, spf_asv, asv_threshold=1.5)
    c1, c2 = 0.91675, 0.375
    expected = [(0, 1), (0, .5), (1 / 3, .5), (2 / 3, .5), (2 / 3, 0), (1, 0)]  # (P_miss_cm, P_fa_cm)
    np.testing.assert_allclose(thr, [0, 1, 2, 2.5, 3, np.inf])
    np.testing.assert_allclose(curve, [(c1 * m + c2 * f) / c2 for m, f in expected])
    assert min_tdcf(bona_cm, spoof_cm, tar, non, spf_asv, asv_threshold=1.5) == (pytest.approx(0.5), 1.0)


def test_min_tdcf_default_threshold_and_costs():
    # separable ASV: the EER threshold lies between 1 and 2 -> no ASV errors; all spoofs pass ASV
    value, _ = min_tdcf([1, 2], [0], [2, 3], [0, 1], [5, 6])
    assert value == pytest.approx(0.0)
    # a CM that cannot separate: accept all costs C2 / min(C1, C2) = 1 (C2 = 0.5 < C1 = 0.9405)
    value, _ = min_tdcf([1], [1], [2, 3], [0, 1], [5, 6])
    assert value == pytest.approx(1.0)
    value, _ = min_tdcf([1], [1], [2, 3], [0, 1], [5, 6], costs={"c_fa_cm": 100})  # C2 = 5 > C1: reject all, C1 / C1
    assert value == pytest.approx(1.0)
    with pytest.raises(SpkrecError, match="unknown t-DCF cost"):
        min_tdcf([1], [0], [2], [0], [1], costs={"c_fa": 1})
    with pytest.raises(SpkrecError, match="undefined"):
        min_tdcf([1], [0], [2], [0], [-5], asv_threshold=0.5)  # no spoof passes the ASV: C2 = 0


def test_cm_eer_per_attack():
    out = cm_eer([1, 2, 3, 4], [-1, 0, 2.5, 3.5], ["A", "A", "B", "B"])
    assert set(out) == {"pooled", "A", "B"}
    assert out["A"][0] == pytest.approx(0.0)
    assert out["B"][0] == pytest.approx(0.5)
    assert out["pooled"][0] == pytest.approx(0.5)
    with pytest.raises(SpkrecError, match="no spoof CM scores"):
        cm_eer([1, 2], [])
    with pytest.raises(SpkrecError, match="attack labels"):
        cm_eer([1, 2], [0], ["A", "B"])


def test_sasv_eers_hand_worked():
    out = sasv_eers([3, 4], [0, 1], [2, 5])
    assert out["sv"] == pytest.approx(0.0)
    assert out["spf"] == pytest.approx(0.5)
    assert out["sasv"] == pytest.approx(0.25)


def test_tandem_rates():
    asv = [3, 1, 3, 3, 0]
    cm = [1, 1, 1, -1, 1]
    kinds = ["target", "target", "spoof", "spoof", "nontarget"]
    out = tandem_rates(asv, cm, kinds, asv_threshold=2, cm_threshold=0)
    assert out == {"target": (0.5, 0.5), "spoof": (1.0, 0.5), "nontarget": (0.0, 0.0)}


def test_cm_report_fixed_threshold_hand_worked():
    from spkrec.cli.spoof import cm_report
    # 4 bona fide test utterances t0..t3, 2 spoofs s0, s1; CM scores chosen by hand
    cm = {"t0": 5.0, "t1": 3.0, "t2": 1.0, "t3": -1.0, "s0": 0.5, "s1": -2.0}
    utt2attack = {"t0": "bonafide", "t1": "bonafide", "t2": "bonafide", "t3": "bonafide", "s0": "gl", "s1": "gl"}
    # ASV: targets t0, t1 (both above 0), non-targets t2 (above), t3 (below), spoofed targets s0, s1 (above)
    asv = [("t0", 2.0, True), ("t1", 1.0, True), ("t2", 0.5, False), ("t3", -3.0, False),
           ("s0", 3.0, True), ("s1", 2.5, True)]
    text, res = cm_report(cm, utt2attack, "X", asv=asv, cm_threshold=2.0)
    # ASV targets and non-targets separate (EER 0, threshold above 0.5): targets and spoofs pass, t2, t3 fail.
    # CM threshold 2: t0, t1 pass; t2, t3, s0, s1 are rejected (half of the bona fide utterances)
    assert res["tandem"]["target"] == (1.0, 1.0)
    assert res["tandem"]["spoof"] == (1.0, 0.0)
    assert res["tandem"]["nontarget"] == (0.0, 0.0) and res["asv_eer"] == 0.0
    assert "given threshold 2" in text and "rejects: 50.00 %" in text
