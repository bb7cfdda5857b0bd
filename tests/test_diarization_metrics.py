"""DER / JER against values computed by hand on tiny reference/hypothesis pairs."""
import pytest

from spkrec.errors import SpkrecError
from spkrec.eval.diarization import diarization_error, format_table

REF = {"a": [(0.0, 10.0, "A"), (10.0, 20.0, "B")]}
HYP = {"a": [(0.0, 12.0, "x"), (12.0, 20.0, "y"), (20.0, 22.0, "y")]}


def test_der_components_by_hand():
    r = diarization_error(REF, HYP)["total"]
    # x->A, y->B; 10-12 s is B said by x (confusion 2 s), 20-22 s nobody speaks (false alarm 2 s)
    assert r["speech"] == pytest.approx(20.0)
    assert r["confusion_s"] == pytest.approx(2.0) and r["fa_s"] == pytest.approx(2.0) and r["miss_s"] == 0
    assert r["der"] == pytest.approx(4 / 20)
    # JER: A vs x: 1 - 10/12; B vs y: 1 - 8/12; mean 0.25
    assert r["jer"] == pytest.approx(0.25)


def test_collar_is_per_side():
    # reference boundaries 0, 10, 20: 0.25 s either side unscored -> 19 s of speech;
    # confusion 10.25-12 (1.75 s), false alarm 20.25-22 (1.75 s)
    r = diarization_error(REF, HYP, collar=0.25)["total"]
    assert r["speech"] == pytest.approx(19.0)
    assert r["der"] == pytest.approx(3.5 / 19)


def test_miss_overlap_and_skip_overlap():
    ref = {"b": [(0.0, 6.0, "A"), (4.0, 10.0, "B")]}     # 2 s of overlap: 12 s of speech
    hyp = {"b": [(0.0, 5.0, "s1"), (5.0, 10.0, "s2")]}
    r = diarization_error(ref, hyp)["total"]
    # 4-6 s two speakers, one hypothesised each instant: miss 2 s; 4-5: s1 is A (ok), 5-6: s2 is B (ok)
    # 4-5 s B missed, 5-6 s A missed -> miss 2 s, no confusion
    assert r["miss_s"] == pytest.approx(2.0) and r["confusion_s"] == pytest.approx(0.0)
    assert r["der"] == pytest.approx(2 / 12)
    r = diarization_error(ref, hyp, skip_overlap=True)["total"]
    assert r["speech"] == pytest.approx(8.0) and r["der"] == pytest.approx(0.0)


def test_uem_limits_scoring_and_totals_pool_files():
    ref = dict(REF, c=[(0.0, 5.0, "A")])
    hyp = dict(HYP)                                        # file c: no hypothesis -> all missed
    res = diarization_error(ref, hyp, uem={"a": [(0.0, 20.0)], "c": [(0.0, 5.0)]})
    assert res["files"]["a"]["fa_s"] == pytest.approx(0.0)      # 20-22 s outside the UEM
    assert res["files"]["c"]["miss"] == pytest.approx(1.0)
    assert res["total"]["der"] == pytest.approx((2.0 + 5.0) / 25.0)
    assert res["total"]["speaker_count_error"] == 1
    assert format_table(res)[-1].startswith("| TOTAL | 28.00 |")


def test_bad_inputs():
    with pytest.raises(SpkrecError, match="not in the reference"):
        diarization_error(REF, {"zz": []})
    with pytest.raises(SpkrecError, match="UEM"):
        diarization_error(REF, HYP, uem={"other": [(0, 1)]})


def test_timeline_picture(tmp_path):
    from spkrec.eval.diarization import plot_timeline
    fig = plot_timeline(REF["a"], HYP["a"], tmp_path / "a.png", title="a")
    assert (tmp_path / "a.png").stat().st_size > 1000
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["hyp y", "hyp x", "ref B", "ref A"]   # bottom to top
