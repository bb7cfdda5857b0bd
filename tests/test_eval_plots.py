"""DET/confusion/histogram figures: files written atomically, probit axes and ticks, nothing displayed."""
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import norm

from spkrec.eval import metrics as M
from spkrec.eval.plots import DET_TICKS, det_corners, plot_confusion, plot_det, plot_score_histograms, probit

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def systems():
    rng = np.random.default_rng(0)
    out = []
    for label, d in (("GMM-UBM", 2.5), ("i-vector PLDA", 1.5)):
        s = np.r_[rng.normal(d, 1, 300), rng.normal(0, 1, 3000)]
        out.append((label, s, np.r_[np.ones(300, bool), np.zeros(3000, bool)]))
    return out


def assert_png(path):
    assert os.path.getsize(path) > 5000
    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    leftovers = [n for n in os.listdir(os.path.dirname(path)) if n.startswith(".")]
    assert leftovers == []                          # no temporary files left behind


def test_plot_det_axes_curves_and_markers(tmp_path):
    out = tmp_path / "det.png"
    syst = systems()
    fig = plot_det(syst, str(out), p_target=0.01)
    assert_png(out)
    ax, = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    expected_ticks = norm.ppf([0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4])
    names = ["0.1", "0.2", "0.5", "1", "2", "5", "10", "20", "40"]
    for ticks, tick_labels in ((ax.get_xticks(), ax.get_xticklabels()),
                               (ax.get_yticks(), ax.get_yticklabels())):
        np.testing.assert_allclose(ticks[:9], expected_ticks)
        assert [t.get_text() for t in tick_labels][:9] == names
    # the weak systems' minDCF points (p_miss ~ 70 % and ~ 96 %) widen the view to 99 % (ticks up to 95 %)
    p_fa, p_miss, thr = M.det_curve(syst[1][1], syst[1][2])
    assert 0.95 < p_miss[np.searchsorted(thr, M.min_dcf(syst[1][1], syst[1][2])[1])] < 0.97
    assert [t.get_text() for t in ax.get_xticklabels()][9:] == ["60", "80", "90", "95"]
    assert "False alarm" in ax.get_xlabel() and "Miss" in ax.get_ylabel()
    lo, hi = ax.get_xlim()
    assert ax.get_ylim() == (lo, hi)
    assert lo == pytest.approx(norm.ppf(0.0005)) and hi == pytest.approx(norm.ppf(0.99))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    for label, s, lab in syst:
        e = M.eer(s, lab)[0]
        assert f"{label} (EER {100 * e:.2f} %)" in legend
    lines = ax.get_lines()
    diag, = [ln for ln in lines if len(ln.get_xdata()) == 2]
    np.testing.assert_allclose(diag.get_xdata(), [lo, hi])
    np.testing.assert_allclose(diag.get_ydata(), [lo, hi])            # the p_miss == p_fa line
    curves = [ln for ln in lines if len(ln.get_xdata()) > 2]
    assert len(curves) == 2
    for (label, s, lab), curve in zip(syst, curves):
        p_fa, p_miss, _ = M.det_curve(s, lab)
        drawn = det_corners(p_fa, p_miss)
        assert drawn[0] == 0 and drawn[-1] == p_fa.size - 1 and drawn.size < p_fa.size / 2
        np.testing.assert_allclose(curve.get_xdata(), probit(p_fa[drawn]))
        np.testing.assert_allclose(curve.get_ydata(), probit(p_miss[drawn]))
        for a, b in zip(drawn[:-1], drawn[1:]):      # every dropped point lies on the drawn segment a-b
            between = slice(a, b + 1)
            assert np.all(p_miss[between] == p_miss[a]) or np.all(p_fa[between] == p_fa[a])
    eer_marks = [ln for ln in lines if ln.get_marker() == "o" and len(ln.get_xdata()) == 1]
    dcf_marks = [ln for ln in lines if ln.get_marker() == "s" and len(ln.get_xdata()) == 1]
    assert len(eer_marks) == 2 and len(dcf_marks) == 2
    for (label, s, lab), mark in zip(syst, eer_marks):
        e = M.eer(s, lab)[0]
        assert mark.get_xdata()[0] == pytest.approx(norm.ppf(e)) == mark.get_ydata()[0]
    for (label, s, lab), mark in zip(syst, dcf_marks):
        # the marked operating point has the minimum cost (a point at p = 0 sits on the axes' edge)
        p_fa, p_miss, thr = M.det_curve(s, lab)
        costs = (0.01 * p_miss + 0.99 * p_fa) / 0.01
        i = int(np.argmin(costs))
        assert costs[i] == pytest.approx(M.min_dcf(s, lab)[0])
        assert mark.get_xdata()[0] == pytest.approx(np.clip(probit(p_fa[i]), lo, hi))
        assert mark.get_ydata()[0] == pytest.approx(np.clip(probit(p_miss[i]), lo, hi))


def test_det_view_is_0_05_to_50_percent_for_good_systems():
    rng = np.random.default_rng(5)
    s = np.r_[rng.normal(4, 1, 2000), rng.normal(0, 1, 20000)]
    lab = np.r_[np.ones(2000, bool), np.zeros(20000, bool)]
    ax = plot_det([("good", s, lab)], None, p_target=0.1).axes[0]
    names = ["0.1", "0.2", "0.5", "1", "2", "5", "10", "20", "40"]
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert ax.get_xlim() == pytest.approx(tuple(norm.ppf([0.0005, 0.5])))


def test_plot_det_without_markers_and_bad_extension_leaves_nothing(tmp_path):
    fig = plot_det(systems()[:1], None, mark_eer=False, mark_min_dcf=False)
    ax = fig.axes[0]
    assert not [ln for ln in ax.get_lines() if ln.get_marker() in ("o", "s")]
    with pytest.raises(ValueError):
        plot_det(systems()[:1], str(tmp_path / "det.notaformat"))
    assert os.listdir(tmp_path) == []


def test_plot_confusion_and_histograms(tmp_path):
    rng = np.random.default_rng(1)
    conf = rng.integers(0, 4, size=(12, 12)) + 10 * np.eye(12, dtype=int)
    labels = [f"spk{i:02d}" for i in range(12)]
    fig = plot_confusion(conf, labels, str(tmp_path / "sub" / "confusion.png"))
    assert_png(tmp_path / "sub" / "confusion.png")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == labels
    np.testing.assert_array_equal(ax.get_images()[0].get_array(), conf)
    label, s, lab = systems()[0]
    fig = plot_score_histograms(s, lab, str(tmp_path / "hist.png"))
    assert_png(tmp_path / "hist.png")
    ax = fig.axes[0]
    assert len(ax.patches) == 100                          # 50 bins x 2 classes
    heights = np.array([p.get_height() for p in ax.patches]).reshape(2, 50)
    widths = np.array([p.get_width() for p in ax.patches]).reshape(2, 50)
    np.testing.assert_allclose((heights * widths).sum(axis=1), 1.0)    # both are densities


def test_nothing_is_displayed_and_pyplot_is_not_used(tmp_path):
    code = ("import sys, numpy as np, matplotlib\n"
            "from spkrec.eval.plots import plot_det\n"
            "s = np.r_[np.arange(5.), np.arange(20.) - 10]; l = np.r_[np.ones(5, bool), np.zeros(20, bool)]\n"
            f"plot_det([('a', s, l)], {str(tmp_path / 'd.png')!r})\n"
            "assert 'matplotlib.pyplot' not in sys.modules\n"
            "print(matplotlib.get_backend())\n")
    env = dict(os.environ, MPLBACKEND="TkAgg", DISPLAY="")    # a GUI backend would fail without a display
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "d.png").stat().st_size > 1000


def test_det_ticks_constant():
    assert DET_TICKS == (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4)
