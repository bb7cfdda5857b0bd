"""Dask execution (``--backend dask``) gives the numbers of the local backend, survives a killed worker,
and no training step holds all frames of a corpus (out-of-core). Clusters bind 127.0.0.1 only."""
import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from spkrec import parallel
from spkrec.errors import SpkrecError
from spkrec.parallel import ParallelConfig, chunk, map_chunks, map_items, reduce_chunks

distributed = pytest.importorskip("distributed", reason="Dask is not installed (pip install 'dask[distributed]')")

CORPUS = Path(__file__).resolve().parents[1] / "data" / "so762-mini"
SERIAL = ParallelConfig()
LOKY2 = ParallelConfig(nj=2)
DASK2 = ParallelConfig(nj=2, backend="dask")


# ------------------------------------------------------------------ module-level task functions (picklable)
def _chunk_sizes(items):
    return len(items)


def _pid_and_sum(items, offset):
    return os.getpid(), sum(items) + offset


def _raise_spkrec(item):
    raise SpkrecError(f"bad item {item}; fix it")


def _block_stats_or_die(blocks, marker, **kwargs):
    """The GMM EM worker, except that the first call anywhere kills its worker process mid-task."""
    from spkrec.gmm.em import _block_stats
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return _block_stats(blocks, **kwargs)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    os._exit(1)


class SyntheticLoader:
    """Picklable ``loader(utt) -> (T, D)`` generating each utterance's frames from its own seed."""

    def __init__(self, num_utts, frames, dim):
        self.utt_ids = [f"u{i:04d}" for i in range(num_utts)]
        self.frames, self.dim = frames, dim

    def __call__(self, utt):
        rng = np.random.default_rng(int(utt[1:]))
        centres = np.array([[-2.0], [0.0], [3.0]], np.float32)
        return centres[rng.integers(0, 3, self.frames)] + rng.standard_normal((self.frames, self.dim), np.float32)


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module", autouse=True)
def _close_clusters():
    yield
    parallel.shutdown()


@pytest.fixture(scope="module")
def scheduler():
    """An explicit local cluster, used through its address as ``--scheduler tcp://127.0.0.1:PORT``."""
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """12 real utterances (2 speakers) with MFCCs + energy VAD computed through the CLI (loky, nj=2)."""
    from spkrec.cli.main import main
    root = tmp_path_factory.mktemp("dask")
    data = _make_data_dir(root / "data")
    conf = root / "mfcc.conf"
    conf.write_text("--dither=1.0\n--num-ceps=13\n")
    assert main(["compute-feats", "--config", str(conf), "--utts-per-chunk", "3", "--nj", "2",
                 str(data), str(root / "mfcc_loky")]) == 0
    assert main(["compute-vad", str(data)]) == 0
    return root, data, conf


def _make_data_dir(path, num_speakers=2):
    path.mkdir(parents=True)
    pairs = [line.split() for line in (CORPUS / "utt2spk").read_text().splitlines() if line.strip()]
    speakers = sorted({spk for _, spk in pairs})[:num_speakers]
    pairs = [(utt, spk) for utt, spk in pairs if spk in speakers]
    assert len(pairs) == 6 * num_speakers
    wav = sorted(f"{spk}-{utt} {CORPUS / 'WAVE' / f'SPEAKER{spk}' / f'{utt}.flac'}" for utt, spk in pairs)
    u2s = sorted(f"{spk}-{utt} {spk}" for utt, spk in pairs)
    (path / "wav.scp").write_text("".join(line + "\n" for line in wav))
    (path / "utt2spk").write_text("".join(line + "\n" for line in u2s))
    return path


@pytest.fixture(scope="module")
def loader(corpus):
    from spkrec.features.pipeline import FeatureLoader
    _, data, _ = corpus
    return FeatureLoader(data / "feats.scp", data / "vad.scp")


@pytest.fixture(scope="module")
def ubm(loader):
    from spkrec.gmm import DiagGMM
    return DiagGMM(n_components=8, n_iter=2, n_iter_per_split=1).fit(loader)


# ------------------------------------------------------------------ the execution layer
def test_chunking_depends_on_item_count_only():
    parts = chunk(range(10), 4)
    assert [len(p) for p in parts] == [3, 3, 2, 2] and [x for p in parts for x in p] == list(range(10))
    assert [len(p) for p in chunk(range(65), 64)] == [2] + [1] * 63
    want = map_chunks(_chunk_sizes, range(300), SERIAL)
    assert len(want) == parallel.NUM_CHUNKS and sum(want) == 300
    for config in (LOKY2, DASK2):
        assert map_chunks(_chunk_sizes, range(300), config) == want
    assert map_chunks(_chunk_sizes, range(300), LOKY2, max_chunks=7) == [43] * 6 + [42]


def test_dask_runs_in_worker_processes_in_input_order():
    results = map_chunks(_pid_and_sum, range(100), DASK2, offset=1000)
    assert [s for _, s in results] == [sum(c) + 1000 for c in chunk(range(100), parallel.NUM_CHUNKS)]
    assert os.getpid() not in {pid for pid, _ in results}
    assert map_items(abs, [-3, 2, -1], DASK2) == [3, 2, 1]
    total = reduce_chunks(_pid_and_sum, range(100), DASK2, combine=lambda a, b: (0, a[1] + b[1]), offset=0)
    assert total[1] == sum(range(100)) + 0
    assert reduce_chunks(_pid_and_sum, [], DASK2, offset=0) is None


def test_local_cluster_binds_loopback_with_one_blas_thread_per_worker():
    map_items(abs, [1], DASK2)
    client = parallel._dask_client(DASK2)
    info = client.scheduler_info()
    addresses = [info["address"], *info["workers"]]
    assert len(info["workers"]) == 2 and all(a.startswith("tcp://127.0.0.1:") for a in addresses)
    threads = client.run(lambda: os.environ.get("OPENBLAS_NUM_THREADS"))
    assert set(threads.values()) == {"1"}


def test_worker_error_is_a_spkrec_error():
    with pytest.raises(SpkrecError, match="bad item 2; fix it"):
        map_items(_raise_spkrec, [2], DASK2)


def test_unreachable_scheduler_is_a_clear_error():
    import dask
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(SpkrecError, match="cannot connect to the Dask scheduler"):
            map_items(abs, [1], ParallelConfig(nj=2, backend="dask", scheduler="tcp://127.0.0.1:9"))


# ------------------------------------------------------------------ same numbers as the local backend
def test_compute_feats_cli_with_dask_writes_identical_arks(corpus):
    from spkrec.cli.main import main
    root, data, conf = corpus
    want = {p.name: p.read_bytes() for p in sorted((root / "mfcc_loky").glob("*.ark"))}
    assert len(want) == 4
    assert main(["compute-feats", "--config", str(conf), "--utts-per-chunk", "3", "--backend", "dask", "--nj", "2",
                 str(data), str(root / "mfcc_dask")]) == 0
    got = {p.name: p.read_bytes() for p in sorted((root / "mfcc_dask").glob("*.ark"))}
    assert got == want


def test_ubm_em_accumulation_and_training_identical_on_dask(loader, ubm, scheduler):
    from spkrec.gmm import DiagGMM
    from spkrec.gmm.em import collect_stats
    args = (ubm.weights_, ubm.means_, ubm.variances_, loader, loader.utt_ids)
    want = collect_stats(*args, config=LOKY2)
    assert want.num_frames > 1000
    for config in (SERIAL, DASK2, ParallelConfig(nj=2, backend="dask", scheduler=scheduler)):
        got = collect_stats(*args, config=config)
        for name in ("occupancy", "first", "second"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
        assert got.loglik == want.loglik and got.num_frames == want.num_frames
    trained = DiagGMM(n_components=8, n_iter=2, n_iter_per_split=1, parallel=DASK2).fit(loader)
    for name in ("weights_", "means_", "variances_"):
        np.testing.assert_array_equal(getattr(trained, name), getattr(ubm, name))


def test_ivector_stats_training_and_extraction_identical_on_dask(loader, ubm):
    from spkrec.ivector import IvectorExtractor, accumulate_stats
    N, F = accumulate_stats(ubm, loader, config=LOKY2, num_gselect=4)
    assert N.shape == (12, 8) and F.shape == (12, 8, loader.dim) and np.all(N.sum(1) > 100)
    N_d, F_d = accumulate_stats(ubm, loader, config=DASK2, num_gselect=4)
    np.testing.assert_array_equal(N_d, N)
    np.testing.assert_array_equal(F_d, F)

    def train_and_extract(config):
        # batch_size=1: 12 chunks, so a chunk count that followed nj would change the float reductions
        model = IvectorExtractor(n_components=5, n_iter=2, batch_size=1, random_state=3, parallel=config).fit(N, F, ubm)
        return model.T_, model.transform(N, F)

    T_local, ivectors_local = train_and_extract(SERIAL)
    for config in (LOKY2, DASK2):
        T, ivectors = train_and_extract(config)
        np.testing.assert_array_equal(T, T_local)
        np.testing.assert_array_equal(ivectors, ivectors_local)
    assert ivectors_local.shape == (12, 5) and np.all(np.isfinite(ivectors_local))


def test_ivector_out_of_core_paths_identical_on_dask(loader, ubm, tmp_path):
    """Statistics files written by Dask workers, T trained with the E-step reading them by path, and
    streamed extraction: the same numbers as the in-memory path."""
    from spkrec.ivector import IvectorExtractor, accumulate_stats, extract_ivectors, write_stats
    N, F = accumulate_stats(ubm, loader, num_gselect=4)
    kw = dict(n_components=5, n_iter=2, batch_size=1, random_state=3)
    ref = IvectorExtractor(**kw).fit(N, F, ubm)
    archive = write_stats(ubm, loader, loader.utt_ids, tmp_path / "stats", DASK2, batch_size=1, num_gselect=4)
    assert len(archive.paths) == 12 and archive.ids() == list(loader.utt_ids)
    model = IvectorExtractor(**kw, parallel=DASK2).fit(archive, ubm=ubm)
    np.testing.assert_array_equal(model.T_, ref.T_)
    np.testing.assert_array_equal(extract_ivectors(model, ubm, loader, config=DASK2, num_gselect=4),
                                  ref.transform(N, F))


def test_killed_worker_is_retried_and_result_unchanged(loader, ubm, scheduler, tmp_path):
    from spkrec.gmm.em import collect_stats, utterance_blocks
    from spkrec.gmm.core import GmmStats, PackedGMM
    want = collect_stats(ubm.weights_, ubm.means_, ubm.variances_, loader, loader.utt_ids, config=SERIAL)
    marker = tmp_path / "killed"
    config = ParallelConfig(nj=2, backend="dask", scheduler=scheduler)
    parts = map_chunks(_block_stats_or_die, utterance_blocks(loader.utt_ids), config, marker=str(marker),
                       loader=loader, packed=PackedGMM(ubm.weights_, ubm.means_, ubm.variances_), subsample=1,
                       chunk_frames=50000)
    assert marker.exists() and int(marker.read_text()) != os.getpid()  # a worker process did die
    got = GmmStats.zeros(*ubm.means_.shape)
    for blocks in parts:
        for stats in blocks:
            got += stats
    np.testing.assert_array_equal(got.first, want.first)
    np.testing.assert_array_equal(got.second, want.second)
    np.testing.assert_array_equal(got.occupancy, want.occupancy)


# ------------------------------------------------------------------ out of core
def test_training_and_statistics_do_not_hold_all_frames():
    """~51 MB of frames stream through UBM EM statistics and i-vector statistics; peak traced memory stays
    a small fraction of it (each utterance is loaded, used and dropped)."""
    from spkrec.gmm import DiagGMM
    from spkrec.gmm.em import collect_stats
    from spkrec.ivector import accumulate_stats
    loader = SyntheticLoader(num_utts=64, frames=10000, dim=20)
    corpus_bytes = len(loader.utt_ids) * loader.frames * loader.dim * 4
    model = DiagGMM(n_components=4, n_iter=1, n_iter_per_split=1, chunk_frames=20000).fit(loader("u0000"))
    tracemalloc.start()
    try:
        stats = collect_stats(model.weights_, model.means_, model.variances_, loader, loader.utt_ids,
                              chunk_frames=20000)
        N, F = accumulate_stats(model, loader, num_gselect=4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stats.num_frames == len(loader.utt_ids) * loader.frames and N.shape == (64, 4)
    assert peak < 0.15 * corpus_bytes, f"peak {peak / 1e6:.1f} MB for a {corpus_bytes / 1e6:.1f} MB corpus"
