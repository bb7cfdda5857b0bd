"""Figures: files written atomically, and the data each draws (lines, ticks, colours, limits), read back from
the matplotlib Figure/Axes objects; real speech (so762-mini) for the EM, i-vector map and score plots."""
import glob
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import norm

from spkrec.cli.main import main
from spkrec.eval import metrics as M
from spkrec.eval.plots import (DET_TICKS, affine_inverse, bayes_error_rates, det_corners, plot_bayes_error,
                               plot_bayes_error_grid, plot_confusion, plot_det, plot_objectives,
                               plot_score_histogram_grid, plot_score_histograms, plot_vector_maps, probit,
                               read_objective, read_objective_file)
from spkrec.eval.plots_base import tick_label_boxes

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = ["0.1", "0.2", "0.5", "1", "2", "5", "10", "20", "40"]


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


def assert_no_overlap(boxes, what):
    """Independent pairwise check of display-space rectangles (x0, y0, x1, y1)."""
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            (ti, a), (tj, b) = boxes[i], boxes[j]
            apart = a.x1 <= b.x0 or b.x1 <= a.x0 or a.y1 <= b.y0 or b.y1 <= a.y0
            assert apart, f"{what}: tick labels {ti!r} and {tj!r} overlap ({a} / {b})"


def det_axes(fig):
    ax, = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    return ax


# ---------------------------------------------------------------------------------------------- DET
def test_plot_det_axes_curves_and_markers(tmp_path):
    out = tmp_path / "det.png"
    syst = systems()
    fig = plot_det(syst, str(out), p_target=0.01, title="mini: test")
    assert_png(out)
    ax = det_axes(fig)
    assert ax.get_title() == "mini: test"
    for ticks, tick_labels in ((ax.get_xticks(), ax.get_xticklabels()),
                               (ax.get_yticks(), ax.get_yticklabels())):
        np.testing.assert_allclose(ticks, norm.ppf(DET_TICKS))
        shown = [t.get_text() for t in tick_labels]
        assert all(s in ("", n) for s, n in zip(shown, NAMES))          # a label is its tick's or blank
        assert {"0.1", "1", "10", "40"} <= set(shown)                     # the decades and the ends always
    # the view stays 0.1 - 40 % although the weak system's minDCF point has p_miss ~ 96 %
    lo, hi = ax.get_xlim()
    assert ax.get_ylim() == (lo, hi)
    assert lo == pytest.approx(norm.ppf(0.001)) and hi == pytest.approx(norm.ppf(0.4))
    p_fa, p_miss, thr = M.det_curve(syst[1][1], syst[1][2])
    assert 0.95 < p_miss[np.searchsorted(thr, M.min_dcf(syst[1][1], syst[1][2])[1])] < 0.97
    assert "False alarm" in ax.get_xlabel() and "Miss" in ax.get_ylabel()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    for label, s, lab in syst:
        assert f"{label} (EER {100 * M.eer(s, lab)[0]:.2f} %)" in legend
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
        assert mark.get_markerfacecolor() != "none"                   # inside the view: filled
    for (label, s, lab), mark in zip(syst, dcf_marks):
        # the marked operating point has the minimum cost; outside the view it sits hollow on the edge
        p_fa, p_miss, thr = M.det_curve(s, lab)
        costs = (0.01 * p_miss + 0.99 * p_fa) / 0.01
        i = int(np.argmin(costs))
        assert costs[i] == pytest.approx(M.min_dcf(s, lab)[0])
        assert mark.get_xdata()[0] == pytest.approx(np.clip(probit(p_fa[i]), lo, hi))
        assert mark.get_ydata()[0] == pytest.approx(np.clip(probit(p_miss[i]), lo, hi))
        outside = not (lo <= probit(p_fa[i]) <= hi and lo <= probit(p_miss[i]) <= hi)
        assert (mark.get_markerfacecolor() == "none") == outside
    assert outside                                   # the weak system's (p_miss ~ 96 %) is on the top edge
    assert dcf_marks[1].get_ydata()[0] == pytest.approx(hi)


@pytest.mark.parametrize("limits", [(0.001, 0.4), (1e-5, 0.999), (0.0005, 0.5), (0.01, 0.2)])
def test_det_tick_labels_do_not_collide(limits):
    fig = plot_det(systems(), None, limits=limits)
    ax = det_axes(fig)
    lo, hi = ax.get_xlim()
    assert (lo, hi) == pytest.approx(tuple(norm.ppf(limits)))
    for axis in ("x", "y"):
        boxes = tick_label_boxes(ax, axis)
        assert len(boxes) >= 3
        assert_no_overlap(boxes, f"{axis} axis {limits}")
        texts = [t for t, _ in boxes]
        assert [float(t) for t in texts] == sorted(float(t) for t in texts)


def test_det_view_ignores_markers_and_can_be_asked(tmp_path):
    rng = np.random.default_rng(5)
    s = np.r_[rng.normal(1, 1, 200), rng.normal(0, 1, 2000)]     # weak: minDCF at p_target 0.001 far up
    lab = np.r_[np.ones(200, bool), np.zeros(2000, bool)]
    ax = det_axes(plot_det([("weak", s, lab)], None, p_target=0.001))
    assert ax.get_xlim() == pytest.approx(tuple(norm.ppf([0.001, 0.4])))
    assert ax.get_ylim() == pytest.approx(tuple(norm.ppf([0.001, 0.4])))
    ax = det_axes(plot_det([("weak", s, lab)], None, limits=(0.01, 0.9)))
    assert ax.get_ylim() == pytest.approx(tuple(norm.ppf([0.01, 0.9])))
    assert "90" in [t.get_text() for t in ax.get_yticklabels()]


def test_det_sixteen_systems_have_distinct_colour_and_style():
    rng = np.random.default_rng(2)
    syst = []
    for k in range(16):
        s = np.r_[rng.normal(1 + 0.2 * k, 1, 100), rng.normal(0, 1, 1000)]
        syst.append((f"sys{k}", s, np.r_[np.ones(100, bool), np.zeros(1000, bool)]))
    ax = det_axes(plot_det(syst, None))
    curves = [ln for ln in ax.get_lines() if len(ln.get_xdata()) > 2]
    assert len(curves) == 16
    from matplotlib.colors import to_hex
    pairs = [(to_hex(c.get_color()), c.get_linestyle()) for c in curves]
    assert len(set(pairs)) == 16
    assert len({p[0] for p in pairs}) == 16                    # even the colours alone differ
    assert pairs[10] != pairs[0] and pairs[10][0] != pairs[0][0]
    legend = ax.get_legend()
    assert [t.get_text().split(" (")[0] for t in legend.get_texts()][:16] == [f"sys{k}" for k in range(16)]
    for handle, curve in zip(legend.legend_handles if hasattr(legend, "legend_handles") else legend.legendHandles,
                             curves):
        assert to_hex(handle.get_color()) == to_hex(curve.get_color())
        assert handle.get_linestyle() == curve.get_linestyle()


def test_det_coinciding_curves_are_told_apart():
    label, s, lab = systems()[0]
    rng = np.random.default_rng(3)
    twin = s + rng.normal(0, 1e-3, s.size)                    # lies on top of the first curve
    other = systems()[1][1]
    ax = det_axes(plot_det([("plda two-cov", s, lab), ("plda simplified", twin, lab), ("gmm", other, lab)], None))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[1].endswith("; overlaps plda two-cov")
    assert "overlaps" not in legend[0] and "overlaps" not in legend[2]
    curves = [ln for ln in ax.get_lines() if len(ln.get_xdata()) > 2]
    # each curve carries its own marker at intervals, started at a different offset
    assert len({c.get_marker() for c in curves}) == 3
    assert len({c.get_markevery()[0] for c in curves}) == 3
    assert all(isinstance(c.get_markevery()[1], float) for c in curves)


def test_plot_det_without_markers_and_bad_extension_leaves_nothing(tmp_path):
    fig = plot_det(systems()[:1], None, mark_eer=False, mark_min_dcf=False, curve_markers=False)
    ax = fig.axes[0]
    assert not [ln for ln in ax.get_lines() if ln.get_marker() not in ("None", "none", None, "")]
    with pytest.raises(ValueError):
        plot_det(systems()[:1], str(tmp_path / "det.notaformat"))
    assert os.listdir(tmp_path) == []


def test_det_ticks_constant():
    assert DET_TICKS == (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4)


def test_nothing_is_displayed_and_pyplot_is_not_used(tmp_path):
    code = ("import sys, numpy as np, matplotlib\n"
            "from spkrec.eval.plots import plot_det, plot_vector_maps, plot_bayes_error\n"
            "s = np.r_[np.arange(5.), np.arange(20.) - 10]; l = np.r_[np.ones(5, bool), np.zeros(20, bool)]\n"
            f"plot_det([('a', s, l)], {str(tmp_path / 'd.png')!r})\n"
            f"plot_bayes_error([('a', s, l)], {str(tmp_path / 'a.png')!r})\n"
            "assert 'matplotlib.pyplot' not in sys.modules\n"
            "print(matplotlib.get_backend())\n")
    env = dict(os.environ, MPLBACKEND="TkAgg", DISPLAY="")    # a GUI backend would fail without a display
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "d.png").stat().st_size > 1000 and (tmp_path / "a.png").stat().st_size > 1000
    from spkrec.io.atomic import default_file_mode
    assert (tmp_path / "d.png").stat().st_mode & 0o777 == default_file_mode()   # as open() would, not mkstemp's 0600


# ---------------------------------------------------------------------------------------------- confusion
@pytest.mark.parametrize("n", [12, 30, 60, 125])
def test_confusion_labels_readable_and_integer_colour_bar(tmp_path, n):
    rng = np.random.default_rng(n)
    conf = rng.integers(0, 3, size=(n, n)) + 5 * np.eye(n, dtype=int)
    labels = [f"spk{i:03d}" for i in range(n)]
    fig = plot_confusion(conf, labels, str(tmp_path / "sub" / "confusion.png"))
    assert_png(tmp_path / "sub" / "confusion.png")
    ax, cbar = fig.axes
    np.testing.assert_array_equal(ax.get_images()[0].get_array(), conf)
    for axis in ("x", "y"):
        boxes = tick_label_boxes(ax, axis)
        assert_no_overlap(boxes, f"confusion {n} {axis}")
        assert all(t in labels for t, _ in boxes)
        assert len(boxes) >= n / 2                       # at least every other speaker is named
    texts = [t.get_text() for t in ax.get_xticklabels()]
    assert [t for t in texts if t] == [lab for lab, t in zip(labels, texts) if t]   # in matrix order
    assert min(t.get_fontsize() for t in ax.get_xticklabels()) >= 5
    if n <= 60:
        assert texts == labels                           # every speaker named up to 60
    ticks = cbar.get_yticks()
    ticks = ticks[(ticks >= 0) & (ticks <= conf.max())]
    assert len(ticks) >= 2 and np.all(ticks == np.round(ticks))
    shown = [t.get_text().replace("\u2212", "-") for t in cbar.get_yticklabels() if t.get_text()]
    assert all(t.lstrip("-").isdigit() for t in shown), shown


# ---------------------------------------------------------------------------------------------- histograms
def test_histograms_with_eer_and_calibrated_bayes_thresholds(tmp_path):
    label, s, lab = systems()[0]
    cal = 2.0 * s - 3.0                                   # a linear calibration
    theta = M.bayes_threshold(0.01)
    thr = affine_inverse(s, cal, theta)
    assert thr == pytest.approx((theta + 3.0) / 2.0)
    fig = plot_score_histograms(s, lab, str(tmp_path / "hist.png"), bayes_threshold=thr, bayes_label="Bayes")
    assert_png(tmp_path / "hist.png")
    ax = fig.axes[0]
    assert len(ax.patches) == 100                          # 50 bins x 2 classes
    heights = np.array([p.get_height() for p in ax.patches]).reshape(2, 50)
    widths = np.array([p.get_width() for p in ax.patches]).reshape(2, 50)
    np.testing.assert_allclose((heights * widths).sum(axis=1), 1.0)    # both are densities
    counts_non, edges = np.histogram(s[~lab], bins=np.histogram_bin_edges(s, 50))
    np.testing.assert_allclose(heights[0], counts_non / counts_non.sum() / np.diff(edges))
    eer_line, bayes_line = ax.get_lines()
    assert eer_line.get_xdata()[0] == pytest.approx(M.eer(s, lab)[1])
    assert bayes_line.get_xdata()[0] == pytest.approx(thr)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("EER threshold") for t in legend) and "Bayes" in legend


def test_affine_inverse_of_a_monotonic_non_linear_map_and_a_decreasing_one():
    s = np.linspace(-3, 3, 601)
    cal = s ** 3 + s                                     # increasing, not affine: interpolation
    assert affine_inverse(s, cal, 2.0) == pytest.approx(1.0, abs=1e-3)       # 1 + 1 = 2
    assert affine_inverse(s, -s, 0.0) is None


def test_histogram_grid_one_panel_per_system():
    syst = systems()
    fig = plot_score_histogram_grid([(lab, s, l, None if k else 1.0, None) for k, (lab, s, l) in enumerate(syst)])
    assert [a.get_title() for a in fig.axes] == [lab for lab, _, _ in syst]
    assert [len(a.get_lines()) for a in fig.axes] == [2, 1]


# ---------------------------------------------------------------------------------------------- APE
def test_bayes_error_rates_match_dcf_and_brute_force():
    label, s, lab = systems()[1]
    s = s - 1.0
    for p in (0.01, 0.1, 0.5, 0.9):
        eta = np.log(p / (1 - p))
        actual, minimum, default = bayes_error_rates(s, lab, [eta])
        assert default[0] == pytest.approx(min(p, 1 - p))
        assert actual[0] / default[0] == pytest.approx(M.act_dcf(s, lab, None, p))
        assert minimum[0] / default[0] == pytest.approx(M.min_dcf(s, lab, p)[0])
        brute = min(p * np.mean(s[lab] < t) + (1 - p) * np.mean(s[~lab] >= t)
                    for t in np.r_[np.unique(s), np.inf])
        assert minimum[0] == pytest.approx(brute)
        assert minimum[0] <= actual[0] + 1e-12 and actual[0] <= 1.0


def test_area_under_ape_curves_is_cllr():
    """Brummer & du Preez 2006: integrated over the prior log-odds, the actual Bayes error is 2 ln 2 Cllr and the
    minimum 2 ln 2 minCllr."""
    label, s, lab = systems()[0]
    s = 0.8 * s - 2.0
    eta = np.linspace(-40, 40, 160001)
    actual, minimum, _ = bayes_error_rates(s, lab, eta)
    area = lambda y: float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(eta)))       # noqa: E731
    assert area(actual) == pytest.approx(2 * np.log(2) * M.cllr(s, lab), rel=2e-3)
    assert area(minimum) == pytest.approx(2 * np.log(2) * M.min_cllr(s, lab), rel=2e-3)


def test_ape_plot_raw_vs_calibrated(tmp_path):
    label, s, lab = systems()[0]
    cal = 1.7 * s - 4.0
    fig = plot_bayes_error([("raw", s, lab), ("calibrated", cal, lab)], str(tmp_path / "ape.png"), p_target=0.01)
    assert_png(tmp_path / "ape.png")
    ax, axn = fig.axes
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    eta = lines[next(k for k in lines if k.startswith("raw: actual"))].get_xdata()
    for name, scores in (("raw", s), ("calibrated", cal)):
        key = next(k for k in lines if k.startswith(f"{name}: actual"))
        np.testing.assert_allclose(lines[key].get_ydata(), bayes_error_rates(scores, lab, eta)[0])
        assert f"Cllr {M.cllr(scores, lab):.3f}" in key
    minima = [k for k in lines if k.startswith("minimum")]
    assert minima == [f"minimum of raw, calibrated (minCllr {M.min_cllr(s, lab):.3f})"]   # drawn once
    default = lines["default (accept/reject all)"].get_ydata()
    np.testing.assert_allclose(default, np.minimum(1 / (1 + np.exp(-eta)), 1 / (1 + np.exp(eta))))
    vline, = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 2 and ln.get_xdata()[0] == ln.get_xdata()[1]]
    assert vline.get_xdata()[0] == pytest.approx(np.log(0.01 / 0.99))
    # the normalised panel at logit(p_target) reads the actDCF
    i = int(np.argmin(np.abs(eta - np.log(0.01 / 0.99))))
    nl = next(ln for ln in axn.get_lines() if ln.get_label().startswith("calibrated: actual"))
    p = 1 / (1 + np.exp(-eta[i]))
    assert nl.get_ydata()[i] == pytest.approx(M.act_dcf(cal, lab, -eta[i], p))
    grid = plot_bayes_error_grid([("a", [("raw", s, lab), ("calibrated", cal, lab)]), ("b", [("scores", s, lab)])])
    assert [a.get_title() for a in grid.axes] == ["a", "b"]
    assert [sum(ln.get_label().startswith("minimum") for ln in a.get_lines()) for a in grid.axes] == [1, 1]


# ---------------------------------------------------------------------------------------------- real speech
@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """A UBM, full UBM and extractor trained by the CLI on 8 so762-mini speakers, and their test i-vectors."""
    import python_speech_features as psf
    import soundfile as sf
    from spkrec.io.kaldi_io import write_matrices
    files = sorted(glob.glob(os.path.join(ROOT, "data", "so762-mini", "WAVE", "*", "*.flac")))
    if not files:
        pytest.skip("data/so762-mini not present")
    speakers = sorted({os.path.basename(os.path.dirname(f)) for f in files})[:8]
    tmp = tmp_path_factory.mktemp("plots")
    data = tmp / "data"
    data.mkdir()
    items, utt2spk = [], {}
    for f in files:
        spk = os.path.basename(os.path.dirname(f))
        if spk in speakers:
            sig, rate = sf.read(f, dtype="int16")
            utt = f"{spk}-{os.path.basename(f)[:-5]}"
            items.append((utt, psf.mfcc(sig, rate, numcep=13).astype(np.float32)))
            utt2spk[utt] = spk
    items.sort()
    write_matrices(data / "raw.ark", data / "feats.scp", items)
    (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in sorted(utt2spk.items())))
    feat = ["--deltas-order", "0", "--cmvn", "utterance"]
    assert main(["train-ubm", "--num-gauss", "8", "--num-iters", "3", "--num-iters-per-split", "1", *feat,
                 str(data), str(tmp / "ubm")]) == 0
    assert main(["train-full-ubm", "--num-iters", "2", *feat, str(tmp / "ubm"), str(data), str(tmp / "full")]) == 0
    assert main(["train-ivector-extractor", "--tv-dim", "5", "--num-iters", "3", "--heldout-speakers", "2",
                 str(tmp / "full"), str(data), str(tmp / "ext")]) == 0
    assert main(["extract-ivectors", str(tmp / "ext"), str(data), str(tmp / "iv")]) == 0
    return {"tmp": tmp, "data": data, "utt2spk": utt2spk}


def test_training_verbs_write_the_objective_per_iteration(speech):
    from spkrec.gmm import DiagGMM
    from spkrec.ivector import IvectorExtractor
    tmp = speech["tmp"]
    ubm = read_objective_file(tmp / "ubm" / "final.ubm.objective.txt")
    model = DiagGMM.load(tmp / "ubm" / "final.ubm.npz")
    final = np.array([st == "final" for st in ubm["stage"]])
    np.testing.assert_allclose(ubm["objective"][final], model.loglik_history_, rtol=1e-6)
    assert final.sum() == 3 and set(ubm["num_gauss"][final]) == {8}
    assert list(ubm["num_gauss"][~final]) == [2, 4, 8]                # one iteration after each split
    log_values = [float(line.split()[3]) for line in open(tmp / "ubm" / "log" / "train_ubm.log") if line[0] != "#"]
    np.testing.assert_allclose(ubm["objective"], log_values, rtol=1e-6)          # the same as the log's
    assert np.all(np.isnan(ubm["heldout"]))
    ext = read_objective_file(tmp / "ext" / "extractor.objective.txt")
    extractor = IvectorExtractor.load(tmp / "ext" / "extractor.npz")
    np.testing.assert_allclose(ext["objective"], extractor.objective_history_, rtol=1e-6)
    np.testing.assert_allclose(ext["heldout"], extractor.heldout_objective_history_, rtol=1e-6)
    assert ext["objective"].size == 3 and np.all(np.isfinite(ext["heldout"]))
    full = read_objective(tmp / "full")
    full_log = [float(line.split()[-1]) for line in open(tmp / "full" / "log" / "train_full_ubm.log")]
    np.testing.assert_allclose(full["objective"], full_log, rtol=1e-6)
    assert full["objective"].size >= 2 and np.all(np.diff(full["objective"]) > 0)
    # plot-em draws what the files hold, one panel each
    out = tmp / "em.png"
    assert main(["plot-em", "--out", str(out), f"{tmp / 'ubm' / 'final.ubm.objective.txt'}:UBM",
                 f"{tmp / 'ext'}:T matrix", str(tmp / "ubm" / "final.ubm.npz")]) == 0
    assert_png(out)
    fig = plot_objectives([("UBM", ubm), ("T", ext)])
    ax_ubm, ax_t = fig.axes
    np.testing.assert_allclose(ax_ubm.get_lines()[0].get_ydata(), ubm["objective"])
    np.testing.assert_allclose(ax_ubm.get_lines()[0].get_xdata(), np.arange(1, ubm["objective"].size + 1))
    assert [t.get_text() for t in ax_ubm.texts] == ["2", "4", "8"]      # the splitting stages
    np.testing.assert_allclose(ax_t.get_lines()[1].get_ydata(), ext["heldout"])
    from_model = read_objective(tmp / "ubm" / "final.ubm.npz")      # the side file next to the model wins
    assert from_model["objective"].size == ubm["objective"].size


def test_objective_file_errors(tmp_path, capsys):
    bad = tmp_path / "x.objective.txt"
    bad.write_text("# quantity: q\nfinal 8 one 1.0 nan\n")
    assert main(["plot-em", "--out", str(tmp_path / "e.png"), str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2:" in err and len(err.strip().splitlines()) == 1
    assert main(["plot-em", "--out", str(tmp_path / "e.png"), str(tmp_path / "none.txt")]) == 1


def test_ivector_map_of_real_speech(speech):
    from spkrec.io.kaldi_io import read_vectors
    keys, X = read_vectors(speech["tmp"] / "iv" / "ivector.scp")
    spk = [speech["utt2spk"][k] for k in keys]
    fig = plot_vector_maps([("i-vectors", X, spk), ("again", X[:20], spk[:20])], None, tsne_max=len(X))
    assert [a.get_title() for a in fig.axes] == ["i-vectors: PCA", "i-vectors: t-SNE", "again: PCA", "again: t-SNE"]
    # PCA coordinates: the length-normalised, centred vectors on their two leading right singular vectors
    Y = X / np.linalg.norm(X, axis=1, keepdims=True)
    Y = Y - Y.mean(0)
    _, _, vt = np.linalg.svd(Y.astype(np.float64), full_matrices=False)
    ref = Y @ vt[:2].T
    xy = fig.maps[(0, "pca")]
    for c in range(2):
        assert abs(np.corrcoef(xy[:, c], ref[:, c])[0, 1]) > 0.9999
    ax = fig.axes[0]
    assert len(ax.collections) == len(set(spk)) == 8
    from matplotlib.colors import to_hex
    colours = set()
    for coll in ax.collections:
        sel = np.array(spk) == coll.get_label()
        np.testing.assert_allclose(coll.get_offsets(), xy[sel])
        colours.add(to_hex(coll.get_facecolor()[0]))
    assert len(colours) == 8
    # t-SNE: speakers cluster (mean same-speaker distance below the mean distance)
    t = fig.maps[(0, "tsne")]
    d = np.linalg.norm(t[:, None] - t[None], axis=-1)
    same = np.array(spk)[:, None] == np.array(spk)[None]
    assert d[same & ~np.eye(len(t), dtype=bool)].mean() < d[~same].mean()
    only_pca = plot_vector_maps([(None, X, spk)], None, tsne_max=len(X) - 1)
    assert [a.get_title() for a in only_pca.axes] == ["PCA"]


def test_plot_verbs_on_real_scores(speech, tmp_path, capsys):
    """Cosine scores of real i-vectors: plot-hist, plot-ape, plot-confusion, plot-map, plot-det."""
    from spkrec.io.kaldi_io import read_vectors
    keys, X = read_vectors(speech["tmp"] / "iv" / "ivector.scp")
    spk = [speech["utt2spk"][k] for k in keys]
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    models = sorted(set(spk))
    first = {m: [i for i, s in enumerate(spk) if s == m][:2] for m in models}
    enrolled = {i for idx in first.values() for i in idx}
    tests = [i for i in range(len(keys)) if i not in enrolled]
    lines, trials = [], []
    for m in models:
        mean = X[first[m]].mean(0)
        for i in tests:
            lines.append(f"{m} {keys[i]} {float(X[i] @ mean):.6f}")
            trials.append(f"{m} {keys[i]} {'target' if spk[i] == m else 'nontarget'}")
    (tmp_path / "trials").write_text("\n".join(trials) + "\n")
    (tmp_path / "raw.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "cal.txt").write_text("\n".join(f"{a} {b} {3 * float(c) - 1:.6f}"
                                                 for a, b, c in (ln.split() for ln in lines)) + "\n")
    (tmp_path / "utt2spk").write_text("".join(f"{keys[i]} {spk[i]}\n" for i in sorted(tests, key=lambda i: keys[i])))
    tr, raw, cal = str(tmp_path / "trials"), str(tmp_path / "raw.txt"), str(tmp_path / "cal.txt")
    for verb, args in (("plot-hist", [f"{raw},{cal}:cosine", f"{cal},{cal}:llr", tr]),
                       ("plot-ape", [f"{raw},{cal}:cosine", f"{raw}:raw only", tr]),
                       ("plot-confusion", ["--utt2spk", str(tmp_path / "utt2spk"), f"{raw}:cosine", f"{cal}:cal"]),
                       ("plot-map", ["--utt2spk", str(speech["data"] / "utt2spk"),
                                     f"{speech['tmp'] / 'iv' / 'ivector.scp'}:i-vectors"]),
                       ("plot-det", ["--title", "mini: test", "--det-limits", "1,40", f"{raw}:cosine", tr])):
        out = tmp_path / f"{verb}.png"
        assert main([verb, "--out", str(out), *args]) == 0, capsys.readouterr().err
        assert_png(out)
    assert "best identifier: cosine" in capsys.readouterr().out      # the first of two equal identifiers
    assert main(["plot-hist", "--out", str(tmp_path / "x.png"), tr]) == 1
    err = capsys.readouterr().err
    assert "at least one score file" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit):
        main(["plot-det", "--det-limits", "40,1", "--out", str(tmp_path / "y.png"), raw, tr])
    assert "0 < LOW < HIGH < 100" in capsys.readouterr().err


def test_results_stage_writes_every_plot(speech, tmp_path):
    """recipes/utils/systems.sh `results` on a small experiment dir: exp/det.png and exp/plots/*.png."""
    exp, test = tmp_path / "exp", tmp_path / "data" / "test"
    (exp / "scores").mkdir(parents=True)
    (exp / "scores_cal").mkdir()
    test.mkdir(parents=True)
    label, s, lab = systems()[0]
    ids = [f"spk{i % 10} utt{i:05d}" for i in range(s.size)]
    (test / "utt2spk").write_text("".join(f"utt{i:05d} spk{i % 10}\n" for i in range(s.size)))   # no full matrix
    (test / "trials").write_text("".join(f"{k} {'target' if t else 'nontarget'}\n" for k, t in zip(ids, lab)))
    for name, scores in (("gmm_ubm", s), ("ivec_cosine", systems()[1][1])):
        (exp / "scores" / f"{name}.txt").write_text("".join(f"{k} {v:.6f}\n" for k, v in zip(ids, scores)))
    (exp / "scores_cal" / "gmm_ubm.txt").write_text("".join(f"{k} {2 * v - 5:.6f}\n" for k, v in zip(ids, s)))
    (exp / "scores_cal" / "fused.txt").write_text("".join(f"{k} {2 * v - 4:.6f}\n" for k, v in zip(ids, s)))
    (exp / "ubm").mkdir()
    shutil.copy(speech["tmp"] / "ubm" / "final.ubm.objective.txt", exp / "ubm" / "final.ubm.objective.txt")
    script = f"""set -euo pipefail
log() {{ echo "$*" >&2; }}
run() {{ local logf=$1; shift; mkdir -p "$(dirname "$logf")"; "$@" >> "$logf" 2>&1 || {{ cat "$logf" >&2; exit 1; }}; }}
. {ROOT}/recipes/utils/systems.sh
cd {tmp_path}
results data/test exp gmm_ubm ivec_cosine fused missing
"""
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               PYTHONPATH=ROOT)
    res = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert_png(exp / "det.png")
    made = sorted(os.listdir(exp / "plots"))
    assert made == ["ape.png", "det.png", "em.png", "hist.png"]   # no full score matrix, no vectors: no confusion/map
    assert "no confusion matrix" in (exp / "log" / "plot_confusion.log").read_text()
    for name in made:
        assert_png(exp / "plots" / name)
    assert (exp / "det.png").read_bytes() == (exp / "plots" / "det.png").read_bytes()
