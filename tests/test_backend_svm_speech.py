"""GSV-SVM on real speech (data/so762-mini): MFCC -> UBM -> MAP supervectors built in the test."""
import glob
import os

import numpy as np
import pytest
import soundfile as sf
from python_speech_features import mfcc
from sklearn.metrics import roc_auc_score
from sklearn.mixture import GaussianMixture

from spkrec.backend import GSVSVM

CORPUS = os.path.join(os.path.dirname(__file__), "..", "data", "so762-mini", "WAVE")
N_EVAL, N_BG = 12, 16


def _supervector(frames, ubm, relevance=16.0):
    """Campbell et al. 2006: MAP-adapted means scaled by sqrt(w_c)/sigma_c, stacked (C*D,)."""
    post = ubm.predict_proba(frames)
    n = post.sum(axis=0)
    f = post.T @ frames
    alpha = (n / (n + relevance))[:, None]
    means = alpha * f / np.maximum(n, 1e-10)[:, None] + (1 - alpha) * ubm.means_
    return (np.sqrt(ubm.weights_)[:, None] * means / np.sqrt(ubm.covariances_)).ravel()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.skipif(not os.path.isdir(CORPUS), reason="embedded corpus missing")
def test_gsv_svm_on_real_speech():
    speakers = sorted(os.listdir(CORPUS))[: N_EVAL + N_BG]
    feats = {}
    for spk in speakers:
        for path in sorted(glob.glob(os.path.join(CORPUS, spk, "*.flac"))):
            signal, rate = sf.read(path, dtype="int16")
            X = mfcc(signal.astype(np.float32), rate, numcep=20, nfilt=26, appendEnergy=False)
            feats[spk, path] = (X - X.mean(axis=0)).astype(np.float64)   # CMN
    bg_spk, eval_spk = speakers[:N_BG], speakers[N_BG:]
    ubm = GaussianMixture(32, covariance_type="diag", max_iter=15, random_state=0, reg_covar=1e-3)
    ubm.fit(np.vstack([X for (s, _), X in feats.items() if s in bg_spk]))
    sv = {k: _supervector(X, ubm) for k, X in feats.items()}
    background = np.array([v for (s, _), v in sv.items() if s in bg_spk])
    enroll, labels, test, test_spk = [], [], [], []
    for spk in eval_spk:
        utts = [v for (s, _), v in sv.items() if s == spk]
        enroll += utts[:3]
        labels += [spk] * 3
        test += utts[3:]
        test_spk += [spk] * len(utts[3:])
    svm = GSVSVM().fit(np.array(enroll), labels, background)
    S = svm.score_pairs(np.array(test))                       # (models, tests)
    is_target = np.array(list(svm.speakers_))[:, None] == np.array(test_spk)[None, :]
    auc = roc_auc_score(is_target.ravel(), S.ravel())
    top1 = np.mean(np.array(list(svm.speakers_))[S.argmax(axis=0)] == np.array(test_spk))
    print(f"GSV-SVM on so762-mini: AUC {auc:.3f}, top-1 {top1:.3f}")
    assert auc > 0.9, auc
    assert top1 > 0.6, top1
