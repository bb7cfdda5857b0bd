"""spkrec.hmm: forward / Viterbi / Baum-Welch against brute-force enumeration of state paths, EM
monotonicity, MAP limits, hmmlearn's GMMHMM as a second reference, text-dependent trials, CLI errors."""
import itertools
import os

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from spkrec.cli.main import main
from spkrec.hmm import PhraseHMM
from spkrec.io.kaldi_io import load_matrix, read_scp, write_matrices


def tiny_model(S=3, M=2, D=2, seed=0, end_in_last=True, left_to_right=True):
    rng = np.random.default_rng(seed)
    start = np.zeros(S)
    start[0] = 1.0
    if left_to_right:
        loop = rng.uniform(0.3, 0.8, S)
        trans = np.diag(loop) + np.diag(1 - loop[:-1], 1)
        trans[-1, -1] = 1.0
    else:
        start = rng.dirichlet(np.ones(S))
        trans = rng.dirichlet(np.ones(S), size=S)
    w = rng.dirichlet(np.ones(M), size=S)
    means = rng.normal(0, 2, (S, M, D))
    var = rng.uniform(0.5, 2.0, (S, M, D))
    return PhraseHMM.from_params(start, trans, w, means, var, end_in_last=end_in_last)


def brute_force(hmm, X):
    """Every state path: log joint, then log p(X), the best path, gamma, xi and component posteriors."""
    S, M, _ = hmm.means_.shape
    T = len(X)
    comp = np.array([[[np.log(hmm.weights_[s, m]) + multivariate_normal.logpdf(x, hmm.means_[s, m],
                                                                                 np.diag(hmm.variances_[s, m]))
                       for m in range(M)] for s in range(S)] for x in X])           # (T, S, M)
    emis = logsumexp(comp, axis=2)
    with np.errstate(divide="ignore"):
        ls, lA = np.log(hmm.startprob_), np.log(hmm.transmat_)
    paths, logp = [], []
    for path in itertools.product(range(S), repeat=T):
        if hmm.end_in_last and path[-1] != S - 1:
            continue
        lp = ls[path[0]] + sum(lA[a, b] for a, b in zip(path[:-1], path[1:])) + sum(emis[t, s] for t, s in enumerate(path))
        paths.append(path)
        logp.append(lp)
    logp = np.array(logp)
    total = logsumexp(logp)
    post = np.exp(logp - total)
    gamma, xi = np.zeros((T, S)), np.zeros((S, S))
    for path, p in zip(paths, post):
        for t, s in enumerate(path):
            gamma[t, s] += p
        for a, b in zip(path[:-1], path[1:]):
            xi[a, b] += p
    within = np.exp(comp - emis[..., None])
    return total, paths[int(np.argmax(logp))], logp.max(), gamma, xi, gamma[..., None] * within


@pytest.mark.parametrize("end_in_last,left_to_right", [(True, True), (False, True), (False, False)])
def test_forward_viterbi_posteriors_match_brute_force(end_in_last, left_to_right):
    hmm = tiny_model(end_in_last=end_in_last, left_to_right=left_to_right)
    X = np.random.default_rng(1).normal(0, 2, (6, 2))
    total, best_path, best, gamma, xi, comp = brute_force(hmm, X)
    assert hmm.score_utterance(X) == pytest.approx(total, rel=1e-5)
    assert hmm.score_utterance(X, "viterbi") == pytest.approx(best, rel=1e-5)
    assert tuple(hmm.decode(X)[1]) == best_path
    loglik, g, c, x = hmm.posteriors(X)
    assert loglik == pytest.approx(total, rel=1e-5)
    np.testing.assert_allclose(g, gamma, atol=1e-5)
    np.testing.assert_allclose(x, xi, atol=1e-5)
    np.testing.assert_allclose(c, comp, atol=1e-5)


def test_forward_matches_hmmlearn_gmmhmm():
    from hmmlearn.hmm import GMMHMM
    hmm = tiny_model(S=4, M=3, D=3, end_in_last=False)
    ref = GMMHMM(n_components=4, n_mix=3, covariance_type="diag", init_params="", params="")
    ref.startprob_, ref.transmat_, ref.weights_ = hmm.startprob_, hmm.transmat_, hmm.weights_
    ref.means_, ref.covars_ = hmm.means_, hmm.variances_
    X = np.random.default_rng(2).normal(0, 2, (40, 3))
    assert hmm.score_utterance(X) == pytest.approx(ref.score(X), rel=1e-5)
    assert hmm.score_utterance(X, "viterbi") == pytest.approx(ref.decode(X, algorithm="viterbi")[0], rel=1e-5)


def test_baum_welch_step_matches_brute_force_expected_counts():
    hmm = tiny_model()
    rng = np.random.default_rng(3)
    utts = [rng.normal(0, 2, (5, 2)), rng.normal(0, 2, (4, 2))]
    N, F, S2, XI = 0, 0, 0, 0
    for X in utts:
        *_, xi, comp = brute_force(hmm, X)
        N = N + comp.sum(0)
        F = F + np.einsum("tsm,td->smd", comp, X)
        S2 = S2 + np.einsum("tsm,td->smd", comp, X * X)
        XI = XI + xi
    means = F / N[..., None]
    var = S2 / N[..., None] - means ** 2
    trans = XI / XI.sum(1, keepdims=True)
    hmm.baum_welch(utts, 1)
    np.testing.assert_allclose(hmm.means_, means, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(hmm.variances_, var, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(hmm.weights_, N / N.sum(1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(hmm.transmat_, trans, atol=1e-5)


def phrase_data(n=20, seed=0, shift=0.0):
    """Utterances of a 3-segment 'phrase' (2-dim), segments of random length."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0], [3, 1], [1, 4]]) + shift
    return [np.concatenate([rng.normal(c, 1.0, (rng.integers(4, 10), 2)) for c in centres]) for _ in range(n)]


def test_em_log_likelihood_never_decreases():
    utts = phrase_data()
    hmm = PhraseHMM(n_states=3, n_components=2, n_iter=12, n_iter_per_split=3, var_floor=1e-4).fit(utts)
    hist = np.array(hmm.loglik_history_)
    assert len(hist) == 12 and np.all(np.diff(hist) >= -1e-6)
    one = PhraseHMM(n_states=3, n_components=1, n_iter=8, n_iter_per_split=0, var_floor=1e-4).fit(utts)
    assert np.all(np.diff(one.loglik_history_) >= -1e-6)
    # the trained model finds the three segments in order
    np.testing.assert_allclose(one.means_[:, 0], [[0, 0], [3, 1], [1, 4]], atol=0.5)
    assert one.score(utts[0]) > one.score(utts[0][::-1])


def test_map_limits_and_closed_form():
    si = PhraseHMM(n_states=3, n_components=2, n_iter=3, n_iter_per_split=2).fit(phrase_data())
    enrol = phrase_data(3, seed=5, shift=0.7)
    same = si.map_adapt(enrol, relevance_factor=1e12)
    np.testing.assert_allclose(same.means_, si.means_, atol=1e-9)
    assert same.score_utterance(enrol[0]) == pytest.approx(si.score_utterance(enrol[0]), rel=1e-9)
    # closed form on the SI alignment (posteriors tested above): alpha E[x] + (1 - alpha) mu
    r = 4.0
    N, F = 0, 0
    for X in enrol:
        _, _, comp, _ = si.posteriors(X)
        N = N + comp.sum(0)
        F = F + np.einsum("tsm,td->smd", comp, X)
    alpha = (N / (N + r))[..., None]
    expected = alpha * F / N[..., None] + (1 - alpha) * si.means_
    np.testing.assert_allclose(si.map_adapt(enrol, r).means_, expected, rtol=1e-6, atol=1e-9)
    # small relevance: the enrolment data's own means; the adapted model prefers the enrolled speaker
    adapted = si.map_adapt(enrol, 1e-8)
    np.testing.assert_allclose(adapted.means_, F / N[..., None], rtol=1e-5)
    test = phrase_data(5, seed=9, shift=0.7)
    assert all(adapted.score(X) > si.score(X) for X in test)


def test_map_weights_and_variances_closed_form():
    """adapt="mwv": weights renormalised within each state, variances by Reynolds' formula, on the SI
    alignment (sums over the posteriors written out here); relevance -> infinity keeps the SI model."""
    si = PhraseHMM(n_states=3, n_components=2, n_iter=3, n_iter_per_split=2).fit(phrase_data())
    enrol = phrase_data(3, seed=5, shift=0.7)
    same = si.map_adapt(enrol, 1e12, adapt="mwv")
    for name in ("means_", "weights_", "variances_"):
        np.testing.assert_allclose(getattr(same, name), getattr(si, name), atol=1e-9)
    r = 3.0
    N = F = S2 = 0
    for X in enrol:
        comp = si.posteriors(X)[2]
        N, F, S2 = N + comp.sum(0), F + np.einsum("tsm,td->smd", comp, X), S2 + np.einsum("tsm,td->smd", comp, X * X)
    alpha = N / (N + r)
    w = alpha * N / N.sum(1, keepdims=True) + (1 - alpha) * si.weights_
    mu = alpha[..., None] * F / N[..., None] + (1 - alpha[..., None]) * si.means_
    var = alpha[..., None] * S2 / N[..., None] + (1 - alpha[..., None]) * (si.variances_ + si.means_ ** 2) - mu ** 2
    got = si.map_adapt(enrol, r, adapt="mwv")
    np.testing.assert_allclose(got.weights_, w / w.sum(1, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(got.means_, mu, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(got.variances_, np.maximum(var, si.var_floor_), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(si.map_adapt(enrol, r, adapt="mw").variances_, si.variances_)
    np.testing.assert_allclose(si.map_adapt(enrol, r, adapt="mw").weights_, got.weights_)


# ---------------------------------------------------------------------- data dirs, trials and the CLI
def _data_dir(path, feats, utt2spk, text):
    os.makedirs(path, exist_ok=True)
    write_matrices(os.path.join(path, "feats.ark"), os.path.join(path, "feats.scp"), sorted(feats.items()))
    for name, table in (("utt2spk", utt2spk), ("text", text)):
        with open(os.path.join(path, name), "w") as f:
            f.writelines(f"{u} {table[u]}\n" for u in sorted(table))
    return str(path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """4 speakers x 2 phrases x 4 utterances; a speaker shifts a phrase's segments, a phrase orders them."""
    root = tmp_path_factory.mktemp("hmmcli")
    feats, utt2spk, text = {}, {}, {}
    for k, spk in enumerate(["s1", "s2", "s3", "s4"]):
        for p, phrase in enumerate(["alpha", "beta"]):
            for i, X in enumerate(phrase_data(4, seed=10 * k + p, shift=0.8 * k)):
                utt = f"{spk}_{phrase}_{i}"
                feats[utt] = (X if p == 0 else X[::-1]).astype(np.float32)
                utt2spk[utt], text[utt] = spk, phrase
    return root, _data_dir(root / "all", feats, utt2spk, text)


def test_td_folds_write_the_four_kinds(corpus):
    from spkrec.io.trials import read_trials
    root, data = corpus
    assert main(["make-td-trials", "--num-folds", "2", "--num-enroll", "1", data, str(root / "folds")]) == 0
    test = root / "folds" / "fold0" / "test"
    rows = read_trials(test / "trials")
    kinds = [line.split()[2] for line in (test / "trial_kinds").read_text().splitlines()]
    # fold0 holds s1 and s3: 4 models (speaker x phrase) x 12 test utterances (3 per speaker and phrase)
    assert len(rows) == 48 and len(kinds) == 48
    for (mid, utt, target), kind in zip(rows, kinds):
        spk, phrase = mid.split("-")
        same_spk, same_phrase = utt.startswith(spk + "_"), f"_{phrase}_" in utt
        assert kind == {(True, True): "target", (False, True): "impostor_correct",
                        (True, False): "target_wrong", (False, False): "impostor_wrong"}[same_spk, same_phrase]
        assert target == (kind == "target")
    assert kinds.count("target") == 12 and kinds.count("impostor_wrong") == 12
    for kind in ("impostor_correct", "target_wrong", "impostor_wrong"):
        sub = read_trials(test / f"trials_{kind}")
        assert len(sub) == 24 and sum(t for *_, t in sub) == 12
    enroll_models = (root / "folds" / "fold0" / "enroll_models" / "utt2spk").read_text().split()
    assert enroll_models[:2] == ["s1_alpha_0", "s1-alpha"]


def test_train_enroll_score_cli_and_errors(corpus, capsys):
    root, data = corpus
    fold = root / "folds" / "fold0"
    if not (fold / "test" / "trials").exists():
        assert main(["make-td-trials", "--num-folds", "2", "--num-enroll", "1", data, str(root / "folds")]) == 0
    feat = ["--deltas-order", "0", "--cmvn", "none"]
    assert main(["train-hmm", "--num-states", "3", "--num-mix", "2", *feat, str(fold / "train"), str(root / "si")]) == 0
    assert main(["enroll-hmm", "--relevance-factor", "2", "--adapt", "mwv", str(root / "si"), str(fold / "enroll"),
                 str(root / "spk")]) == 0
    assert main(["score-hmm", str(root / "si"), str(root / "spk"), str(fold / "test"), str(fold / "test" / "trials"),
                 str(root / "scores.txt")]) == 0
    kinds = np.array([line.split()[2] for line in (fold / "test" / "trial_kinds").read_text().splitlines()])
    scores = np.array([float(line.split()[2]) for line in (root / "scores.txt").read_text().splitlines()])
    assert scores[kinds == "target"].mean() > scores[kinds == "impostor_correct"].mean()
    assert scores[kinds == "target"].min() > scores[kinds == "target_wrong"].max()   # reversed segments
    # one pass, both backgrounds: the same scores as two runs
    trials = str(fold / "test" / "trials")
    assert main(["score-hmm", "--other-background-scores", str(root / "claimed_too.txt"), str(root / "si"),
                 str(root / "spk"), str(fold / "test"), trials, str(root / "both.txt")]) == 0
    assert main(["score-hmm", "--background", "claimed", str(root / "si"), str(root / "spk"), str(fold / "test"),
                 trials, str(root / "claimed.txt")]) == 0
    assert (root / "both.txt").read_text() == (root / "scores.txt").read_text()
    assert (root / "claimed_too.txt").read_text() == (root / "claimed.txt").read_text()
    assert (root / "claimed.txt").read_text() != (root / "scores.txt").read_text()
    # --phrase-scores: the claimed phrase's speaker HMM against the best SI HMM of the other phrases, computed
    # here directly with the per-phrase models (forward log-likelihoods, per frame)
    assert main(["score-hmm", "--phrase-scores", str(root / "phrase.txt"), str(root / "si"), str(root / "spk"),
                 str(fold / "test"), trials, str(root / "all_again.txt")]) == 0
    assert (root / "all_again.txt").read_text() == (root / "scores.txt").read_text()
    from spkrec.hmm import PhraseHMMSet, SpeakerHMMs
    si, spk = PhraseHMMSet.load(str(root / "si" / "hmms.npz")), SpeakerHMMs.load(str(root / "spk" / "speakers.npz"))
    feats = {u: load_matrix(r) for u, r in read_scp(str(fold / "test" / "feats.scp")).items()}
    got = [line.split() for line in (root / "phrase.txt").read_text().splitlines()]
    assert len(got) == len(kinds)
    for mid, utt, score in got:
        X = np.asarray(feats[utt], np.float64)
        claimed = mid.split("-")[1]
        rival = max(si[q].score_utterance(X) for q in si.phrases if q != claimed)
        assert np.isclose(float(score), (spk.model(mid, si).score_utterance(X) - rival) / len(X), atol=1e-6)
    phrase = np.array([float(g[2]) for g in got])
    assert phrase[kinds == "target"].min() > phrase[kinds == "target_wrong"].max()
    capsys.readouterr()
    # a trial whose phrase has no model
    bad = root / "bad_trials"
    first = (fold / "test" / "trials").read_text().splitlines()[0].split()
    bad.write_text(f"{first[0]} {first[1]}\ns1-gamma {first[1]}\n")
    assert main(["score-hmm", str(root / "si"), str(root / "spk"), str(fold / "test"), str(bad),
                 str(root / "bad.txt")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{bad}:2:" in err[0] and "'gamma'" in err[0] and "has no HMM" in err[0]
    # an enrolment utterance with fewer frames than states
    short = _data_dir(root / "short", {"s9_alpha_0": np.zeros((2, 2), np.float32)}, {"s9_alpha_0": "s9"},
                      {"s9_alpha_0": "alpha"})
    assert main(["enroll-hmm", str(root / "si"), short, str(root / "short.npz")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "s9_alpha_0 has 2 frames, fewer than the HMM's 3 states" in err[0]
    assert not (root / "short.npz").exists()


def test_scikit_learn_params_clone_and_old_files(tmp_path):
    from sklearn.base import clone
    from spkrec.hmm import PhraseHMMSet
    from spkrec.io.atomic import load_npz, save_npz
    hmm = PhraseHMM(n_states=3, n_components=2, n_iter=2, n_iter_per_split=1)
    assert hmm.get_params()["n_components"] == 2 and "num_mix" not in hmm.get_params()
    fitted = hmm.fit(phrase_data())
    twin = clone(fitted)
    assert twin.get_params() == fitted.get_params() and not hasattr(twin, "means_")
    np.testing.assert_allclose(twin.fit(phrase_data()).means_, fitted.means_)
    assert hmm.set_params(n_states=4).n_states == 4 and "n_states=4" in repr(hmm)
    # a model file written with the old names (num_states, num_mix, num_iters) still loads
    PhraseHMMSet({"a": fitted}).save(tmp_path / "new.npz")
    arrays, meta = load_npz(tmp_path / "new.npz", "PhraseHMMSet")
    meta["hyper"] = {"num_states": 3, "num_mix": 2, "num_iters": 7, "num_iters_per_split": 1}
    save_npz(tmp_path / "old.npz", "PhraseHMMSet", arrays, meta)
    old = PhraseHMMSet.load(tmp_path / "old.npz")["a"]
    assert (old.n_states, old.n_components, old.n_iter) == (3, 2, 7)
    np.testing.assert_array_equal(old.means_, fitted.means_)
