"""docs/tutorial.ipynb runs top to bottom (nbclient) and computes sane results; stored without outputs."""
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"


def test_tutorial_is_stored_without_outputs():
    nb = json.loads(NOTEBOOK.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code
    for cell in code:
        assert cell["outputs"] == [] and cell["execution_count"] is None, \
            "docs/tutorial.ipynb holds outputs: clear them before committing (Jupyter: Clear All Outputs)"


def _run(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    # a kernel of this very interpreter, whatever kernels the user has installed
    spec = tmp_path / "jupyter" / "kernels" / "spkrec-tutorial"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "spkrec tutorial test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "agg")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + ":" + __import__("os").environ.get("PYTHONPATH", ""))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="spkrec-tutorial",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    return nb


def _stdout(cell):
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def test_tutorial_runs_and_computes_sane_results(tmp_path, monkeypatch):
    """Executed from a folder outside the repository (it must find data/ itself and write only to its
    temporary folder); checks what it computes against the corpus and against the CLI."""
    before = sorted(p.name for p in (ROOT / "docs").iterdir())
    nb = _run(tmp_path, monkeypatch)
    assert sorted(p.name for p in (ROOT / "docs").iterdir()) == before
    results_cell = [c for c in nb.cells if "results" in c.metadata.get("tags", [])]
    assert len(results_cell) == 1
    line = [l for l in _stdout(results_cell[0]).splitlines() if l.startswith("RESULTS ")][0]
    r = json.loads(line[len("RESULTS "):])

    # the mini recipe's protocol: 30 models x 90 test utterances, 3 tests per model speaker
    assert (r["num_trials"], r["num_targets"]) == (2700, 90)
    # MFCC frames of the first utterance: 10 ms shift, snip_edges=false -> round(samples / 160) frames
    import soundfile
    wav = sorted((ROOT / "data/so762-mini/WAVE/SPEAKER0001").iterdir())[0]
    assert r["mfcc_shape"] == [int(np.floor(soundfile.info(str(wav)).frames / 160 + 0.5)), 20]
    assert 0.3 < r["vad_voiced_fraction"] < 1.0
    # sane error rates (chance is 50 %); the recipe's table has GMM-UBM 6.67 %, PLDA 10.73 %
    assert 0.01 < r["gmm_ubm_eer"] < 0.15
    assert 0.02 < r["ivec_plda_eer"] < 0.25
    assert 0.02 < r["ivec_cosine_eer"] < 0.30
    assert 0.0 < r["gmm_ubm_min_dcf"] <= 1.0
    # calibration on the background folds brings Cllr down (raw GMM-UBM scores are not LLRs)
    assert r["gmm_ubm_cal_cllr"] < r["gmm_ubm_raw_cllr"] and r["gmm_ubm_cal_cllr"] < 0.6
    assert r["gmm_ubm_cal_act_dcf"] < 1.0
    # `spkrec evaluate` on the score file the notebook wrote agrees with the numbers computed in Python
    evaluate = [_stdout(c) for c in nb.cells if "spkrec evaluate" in _stdout(c)][0]
    eer_cli = float(re.search(r"^EER:\s+([\d.]+) %", evaluate, re.M).group(1))
    cllr_cli = float(re.search(r"^Cllr:\s+([\d.]+) bits", evaluate, re.M).group(1))
    assert abs(eer_cli - 100 * r["gmm_ubm_eer"]) < 0.006        # calibration keeps the order: same EER
    assert abs(cllr_cli - r["gmm_ubm_cal_cllr"]) < 1e-3          # score file keeps 6 decimals
    # every figure was drawn
    images = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert images >= 6
