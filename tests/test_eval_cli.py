"""`spkrec evaluate | identify | plot-det | results-table` on small files, including the error paths."""
import json

import numpy as np
import pytest

from spkrec.cli.main import main
from spkrec.eval import identification as ident
from spkrec.eval import metrics as M

MODELS = [f"spk{j}" for j in range(6)]
TESTS = [f"{m}-t{k}" for m in MODELS for k in range(3)]


def write_system(tmp_path, name, shift, seed):
    rng = np.random.default_rng(seed)
    rows = []
    for t in TESTS:
        for m in MODELS:
            rows.append((m, t, rng.normal() + (shift if t.startswith(m + "-") else 0.0)))
    path = tmp_path / f"{name}.txt"
    path.write_text("".join(f"{m} {t} {s:.6f}\n" for m, t, s in rows))
    return str(path), rows


@pytest.fixture
def files(tmp_path):
    trials = tmp_path / "trials"
    trials.write_text("".join(f"{m} {t} {'target' if t.startswith(m + '-') else 'nontarget'}\n"
                              for m in MODELS for t in TESTS))
    utt2spk = tmp_path / "utt2spk"
    utt2spk.write_text("".join(f"{t} {t.split('-')[0]}\n" for t in TESTS))
    gmm, gmm_rows = write_system(tmp_path, "gmm", 2.0, 0)
    ivec, _ = write_system(tmp_path, "ivec", 1.0, 1)
    return {"trials": str(trials), "utt2spk": str(utt2spk), "gmm": gmm, "gmm_rows": gmm_rows, "ivec": ivec,
            "dir": tmp_path}


def arrays(rows):
    scores = np.array([round(s, 6) for _, _, s in rows])
    labels = np.array([t.startswith(m + "-") for m, t, _ in rows])
    return scores, labels


def test_evaluate_text_and_json(files, capsys):
    assert main(["evaluate", files["gmm"], files["trials"]]) == 0
    out = capsys.readouterr().out
    for key in ("EER:", "minDCF:", "actDCF:", "Cllr:", "minCllr:", "AUC:", "18 targets, 90 non-targets"):
        assert key in out
    assert main(["evaluate", files["gmm"], files["trials"], "--json",
                 "--p-target", "0.05", "--c-fa", "2"]) == 0
    got = json.loads(capsys.readouterr().out)
    s, lab = arrays(files["gmm_rows"])
    assert got["eer"] == pytest.approx(M.eer(s, lab)[0])
    assert got["min_dcf"] == pytest.approx(M.min_dcf(s, lab, 0.05, 1, 2)[0])
    assert got["act_dcf"] == pytest.approx(M.act_dcf(s, lab, None, 0.05, 1, 2))
    assert got["cllr"] == pytest.approx(M.cllr(s, lab)) and got["auc"] == pytest.approx(M.roc_auc(s, lab))
    assert (got["num_targets"], got["num_nontargets"]) == (18, 90)
    hist = files["dir"] / "hist.png"
    assert main(["evaluate", files["gmm"], files["trials"], "--json", "--eer-method", "rocch",
                 "--hist", str(hist)]) == 0
    assert json.loads(capsys.readouterr().out)["eer"] == pytest.approx(M.eer(s, lab, "rocch")[0])
    assert hist.stat().st_size > 1000


def test_identify_with_confusion(files, capsys):
    png = files["dir"] / "out" / "confusion.png"
    assert main(["identify", files["gmm"], files["utt2spk"], "--top-k", "2", "--json",
                 "--confusion", str(png)]) == 0
    got = json.loads(capsys.readouterr().out)
    utt2spk = {t: t.split("-")[0] for t in TESTS}
    rows = [(m, t, round(s, 6)) for m, t, s in files["gmm_rows"]]
    matrix, truth = ident.identification_scores(rows, utt2spk)
    assert got["top1"] == pytest.approx(ident.top_k_accuracy(matrix, truth, 1))
    assert got["topk"] == pytest.approx(ident.top_k_accuracy(matrix, truth, 2))
    assert (got["num_test"], got["num_models"], got["top_k"]) == (18, 6, 2)
    assert png.stat().st_size > 1000
    assert main(["identify", files["gmm"], files["utt2spk"]]) == 0
    assert "top-5:" in capsys.readouterr().out


def test_identify_missing_pair_is_a_clear_error(files, capsys):
    path = files["dir"] / "partial.txt"
    lines = open(files["gmm"]).read().splitlines()
    path.write_text("\n".join(ln for ln in lines if not ln.startswith("spk3 spk1-t2 ")) + "\n")
    assert main(["identify", str(path), files["utt2spk"]]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "partial.txt" in err and "'spk3'" in err and "'spk1-t2'" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_plot_det_two_systems(files, capsys):
    out = files["dir"] / "det.png"
    assert main(["plot-det", "--out", str(out), f"{files['gmm']}:GMM-UBM", files["ivec"],
                 files["trials"]]) == 0
    text = capsys.readouterr().out
    assert "GMM-UBM: EER" in text and "ivec: EER" in text
    assert out.stat().st_size > 5000
    assert main(["plot-det", "--out", str(out), files["trials"]]) == 1
    assert "at least one score file" in capsys.readouterr().err


def test_results_table_with_identification(files, capsys, caplog):
    out = files["dir"] / "exp" / "results.md"
    assert main(["results-table", "--trials", files["trials"], "--utt2spk", files["utt2spk"],
                 "--out", str(out),
                 f"{files['gmm']}:GMM-UBM", f"{files['ivec']}:i-vector"]) == 0
    printed = capsys.readouterr().out
    assert out.read_text() == printed
    lines = printed.splitlines()
    assert lines[0] == "| system | EER % | minDCF | actDCF | Cllr | minCllr | AUC | top-1 % | top-5 % |"
    assert lines[2].startswith("| GMM-UBM | ") and lines[3].startswith("| i-vector | ")
    s, lab = arrays(files["gmm_rows"])
    assert (f"| {100 * M.eer(s, lab)[0]:.2f} | {M.min_dcf(s, lab)[0]:.4f} | {M.act_dcf(s, lab):.4f} | "
            f"{M.cllr(s, lab):.3f} | {M.min_cllr(s, lab):.3f} | {M.roc_auc(s, lab):.4f} |") in lines[2]
    # trials (and scores) without one non-target pair: no identification for that system, shown as "–"
    sub_trials, partial = files["dir"] / "sub_trials", files["dir"] / "partial.txt"
    sub_trials.write_text("".join(ln for ln in open(files["trials"]) if not ln.startswith("spk3 spk1-t2 ")))
    partial.write_text("".join(ln for ln in open(files["gmm"]) if not ln.startswith("spk3 spk1-t2 ")))
    assert main(["results-table", "--trials", str(sub_trials), "--utt2spk", files["utt2spk"],
                 f"{partial}:partial", files["gmm"]]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[2].startswith("| partial | ") and lines[2].endswith("| – | – |")
    assert lines[3].startswith("| gmm | ") and not lines[3].endswith("| – | – |")
    assert "no identification columns for partial" in caplog.text
    assert main(["results-table", "--trials", files["trials"], files["gmm"]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| system | EER % | minDCF | actDCF | Cllr | minCllr | AUC |" and lines[2].startswith("| gmm | ")


def test_malformed_files_give_one_line_errors(files, capsys):
    bad = files["dir"] / "bad.txt"
    bad.write_text("spk0 spk0-t0 1.5\nspk0 spk0-t1 oops\n")
    assert main(["evaluate", str(bad), files["trials"]]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2:" in err and "not a number" in err and "Traceback" not in err
    bad.write_text("spk0 spk0-t0 1.5\n")                            # trials without scores
    assert main(["evaluate", str(bad), files["trials"]]) == 1
    assert "has no score" in capsys.readouterr().err
    bad_trials = files["dir"] / "bad_trials"
    bad_trials.write_text("spk0 spk0-t0 target\nspk0 spk1-t0 maybe\n")
    assert main(["evaluate", files["gmm"], str(bad_trials)]) == 1
    assert f"{bad_trials}:2:" in capsys.readouterr().err
    only_targets = files["dir"] / "only_targets"
    only_targets.write_text("spk0 spk0-t0 target\nspk0 spk0-t1 target\n")
    assert main(["evaluate", files["gmm"], str(only_targets)]) == 1
    assert "no non-target trials" in capsys.readouterr().err
    bad_utt2spk = files["dir"] / "bad_utt2spk"
    bad_utt2spk.write_text("spk0-t0 spk0 extra\n")
    assert main(["identify", files["gmm"], str(bad_utt2spk)]) == 1
    assert f"{bad_utt2spk}:1:" in capsys.readouterr().err
