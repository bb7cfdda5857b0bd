"""Shared infrastructure: atomic outputs, pickle-free model files, the parallel layer, audio, the CLI."""
import os
import subprocess
import sys

import numpy as np
import pytest

from spkrec.errors import SpkrecError
from spkrec.io.atomic import atomic_path, load_npz, save_npz, write_text_atomic
from spkrec.io.audio import read_audio, resample
from spkrec.parallel import ParallelConfig, SharedArrays, chunk, map_chunks, map_items

DATA = os.path.join(os.path.dirname(__file__), "..", "data")


def test_atomic_path_leaves_old_file_when_writer_fails(tmp_path):
    out = tmp_path / "scores.txt"
    write_text_atomic(out, "a b 1.0\n")
    with pytest.raises(RuntimeError):
        with atomic_path(out) as tmp:
            with open(tmp, "w") as f:
                f.write("partial")
            raise RuntimeError("killed")
    assert out.read_text() == "a b 1.0\n"
    assert sorted(os.listdir(tmp_path)) == ["scores.txt"]  # the temporary file is gone too


def test_npz_round_trip_without_pickle(tmp_path):
    path = tmp_path / "m.npz"
    save_npz(path, "Thing", {"w": np.arange(3.0), "ids": np.array(["a", "bb"])}, meta={"k": 3})
    arrays, meta = load_npz(path, kind="Thing")
    np.testing.assert_array_equal(arrays["w"], np.arange(3.0))
    assert list(arrays["ids"]) == ["a", "bb"] and meta == {"k": 3}
    with np.load(path, allow_pickle=False) as z:  # plain npz readable by anyone
        assert "w" in z.files


def test_npz_errors_are_one_line(tmp_path):
    with pytest.raises(SpkrecError, match="not found"):
        load_npz(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    with pytest.raises(SpkrecError, match="not a readable"):
        load_npz(bad)
    save_npz(tmp_path / "a.npz", "A", {"x": np.zeros(1)})
    with pytest.raises(SpkrecError, match="expected 'B'"):
        load_npz(tmp_path / "a.npz", kind="B")
    with pytest.raises(TypeError):
        save_npz(tmp_path / "o.npz", "A", {"x": np.array([{}, 1], dtype=object)})


def _square_sum(items, offset=0):
    return [x * x + offset for x in items]


def test_chunk_is_contiguous_and_complete():
    items = list(range(11))
    parts = chunk(items, 4)
    assert [x for p in parts for x in p] == items and len(parts) == 4
    assert chunk([], 3) == [] and chunk([1], 5) == [[1]]


@pytest.mark.parametrize("nj", [1, 2])
def test_map_chunks_keeps_input_order(nj):
    out = map_chunks(_square_sum, range(50), ParallelConfig(nj=nj), offset=1)
    assert [x for part in out for x in part] == [x * x + 1 for x in range(50)]
    assert map_items(abs, [-3, 2, -1], ParallelConfig(nj=nj)) == [3, 2, 1]


_COMPUTED = []  # per process: how often the derived value was computed


def _shared_sums(items, shared):
    total = shared.cached("total", lambda: _COMPUTED.append(1) or float(np.asarray(shared["a"]).sum()))
    return [(os.getpid(), total, len(_COMPUTED), float(shared["a"][i])) for i in items]


def test_shared_arrays_travel_once_as_files_and_are_cached_per_worker():
    import gc
    import pickle
    a = np.arange(300_000, dtype=np.float64)
    local = SharedArrays(dict(a=a), ParallelConfig(nj=2))
    assert len(pickle.dumps(local)) < 1000  # paths only, not the 2.4 MB array
    copy = pickle.loads(pickle.dumps(local))
    assert isinstance(copy["a"], np.memmap) and np.array_equal(copy["a"], a)
    inline = SharedArrays(dict(a=a), ParallelConfig(nj=1))
    assert len(pickle.dumps(inline)) > a.nbytes  # in-process / Dask: the arrays travel with it
    out = [x for part in map_chunks(_shared_sums, range(40), ParallelConfig(nj=2), shared=local) for x in part]
    assert [x[3] for x in out] == list(range(40)) and all(x[1] == a.sum() for x in out)
    per_worker = {}
    for pid, _, computed, _ in out:
        per_worker.setdefault(pid, set()).add(computed)
    assert all(v == {1} for v in per_worker.values())  # derived value computed once per worker process
    folder = local._dir
    assert os.path.isdir(folder)
    del local, copy
    gc.collect()
    assert not os.path.exists(folder)  # temporary files removed with the object


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(SpkrecError, match="unknown parallel backend"):
        map_chunks(_square_sum, range(4), ParallelConfig(nj=2, backend="mpi"))


def test_read_audio_int16_scale_and_formats():
    flac = os.path.join(DATA, "so762-mini", "WAVE", "SPEAKER0001", "000010011.flac")
    x, rate = read_audio(flac)
    assert rate == 16000 and x.dtype == np.float32
    assert 1000 < np.abs(x).max() <= 32768 and float(x[0]) == round(float(x[0]))  # integer-valued int16 scale
    import soundfile as sf
    ref, _ = sf.read(flac, dtype="int16")
    np.testing.assert_array_equal(x, ref.astype(np.float32))
    sph = os.path.join(DATA, "timit-sample", "TIMIT", "TRAIN", "DR1", "FVMH0", "SA1.WAV")
    y, rate = read_audio(sph)
    assert rate == 16000 and y.size > 16000


def test_read_audio_errors_and_resampling(tmp_path):
    with pytest.raises(SpkrecError, match="not found"):
        read_audio(str(tmp_path / "nope.wav"), name="wav.scp:3")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00garbage")
    with pytest.raises(SpkrecError, match="cannot decode"):
        read_audio(str(bad))
    with pytest.raises(SpkrecError, match="--allow-commands"):
        read_audio("cat x.wav |")
    t = np.arange(16000) / 16000.0
    tone = (1000 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    down = resample(tone, 16000, 8000)
    assert down.shape == (8000,)
    expected = 1000 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000.0)
    assert np.abs(down[100:-100] - expected[100:-100]).max() < 5.0


def test_stereo_is_mixed_down(tmp_path):
    import soundfile as sf
    stereo = np.stack([np.full(800, 0.25), np.full(800, -0.75)], axis=1)
    path = tmp_path / "st.wav"
    sf.write(path, stereo, 8000, subtype="PCM_16")
    x, rate = read_audio(str(path))
    assert rate == 8000 and np.allclose(x, -0.25 * 32768, atol=1)


def test_cli_lists_verbs_and_rejects_unknown(capsys):
    from spkrec.cli.main import VERBS, main
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for verb in ("compute-feats", "train-ubm", "evaluate", "plot-det"):
        assert verb in out and verb in VERBS
    assert main(["no-such-verb"]) == 2
    assert "unknown verb" in capsys.readouterr().err


def test_console_script_runs():
    proc = subprocess.run([sys.executable, "-m", "spkrec.cli.main", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "train-ubm" in proc.stdout


_FAULTS = """
import pickle, resource, sys
if sys.argv[1] == "tuned":
    from spkrec.parallel import tune_allocator
    tune_allocator()
with open(sys.argv[2], "rb") as f:  # as a fresh worker process receives its task
    model, frames = pickle.load(f)
model.log_likelihood_components(frames[0])
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for x in frames[1:]:
    model.log_likelihood_components(x)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning")
def test_tuned_allocator_spares_a_fresh_worker_the_page_faults(tmp_path):
    import pickle
    from spkrec.ivector import FullGMM
    rng = np.random.default_rng(0)
    C, D = 64, 60
    A = rng.standard_normal((C, D, D)) * 0.05 + np.eye(D)
    ubm = FullGMM.from_params(np.full(C, 1.0 / C), rng.standard_normal((C, D)), A @ A.transpose(0, 2, 1))
    task = tmp_path / "task.pkl"
    frames = [rng.standard_normal((300, D)).astype(np.float32) for _ in range(21)]
    task.write_bytes(pickle.dumps((ubm, frames)))  # full-covariance log-likelihoods of all Gaussians

    def faults(mode):
        out = subprocess.run([sys.executable, "-c", _FAULTS, mode, str(task)], capture_output=True, text=True,
                             check=True)
        return int(out.stdout.strip())
    default, tuned = faults("default"), faults("tuned")
    assert default > 20 * 500  # (300, 1830) float32 temporaries mapped and faulted in for every utterance
    assert tuned < 500  # reused from the heap


def _big_results(items):
    return [dict(a=np.full(300_000, float(i)), small=(np.arange(3), i)) for i in items]


def test_big_worker_results_come_back_through_files_and_are_cleaned_up():
    import glob
    import tempfile
    before = set(glob.glob("/dev/shm/spkrec-results-*") + glob.glob(os.path.join(tempfile.gettempdir(),
                                                                                    "spkrec-results-*")))
    out = [r for part in map_chunks(_big_results, range(6), ParallelConfig(nj=2)) for r in part]
    assert [float(r["a"][0]) for r in out] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert all(r["a"].shape == (300_000,) and isinstance(r["a"], np.ndarray) for r in out)
    assert all(r["small"][1] == i and list(r["small"][0]) == [0, 1, 2] for i, r in enumerate(out))
    after = set(glob.glob("/dev/shm/spkrec-results-*") + glob.glob(os.path.join(tempfile.gettempdir(),
                                                                                   "spkrec-results-*")))
    assert after == before


def test_parallel_worker_modules_do_not_import_scikit_learn():
    """The modules whose functions run in loky/Dask workers stay free of scikit-learn (its import costs
    each worker about 1 s of CPU, many times per recipe); the estimators import it in the driver only."""
    import subprocess
    import sys
    code = ("import sys; import spkrec.gmm.map, spkrec.gmm.supervectors, spkrec.gmm.scoring, spkrec.gmm.core, "
            "spkrec.ivector.stats, spkrec.ivector.streaming, spkrec.ivector.posterior, spkrec.features.pipeline; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn')[:3])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
