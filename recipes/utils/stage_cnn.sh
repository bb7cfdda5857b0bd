#!/usr/bin/env bash
# Stage 12 of recipes/mini and recipes/so762: CNN speaker embeddings over log-mel filter banks.
# Sourced by run.sh before utils/stages_classical.sh, which calls run_cnn_stage between stages 11 and 20.
# Options (set in run.sh, recorded by stage_opts[12] in utils/stage_options.sh):
#   cnn_arch     vgg | resnet18 | resnet34 | resnet50 (spkrec train-cnn --arch)
#   cnn_epochs   training epochs of the background CNN (the classifier fine-tunes it for as many)
# Systems (raw scores, like the RNN's): cnn_cosine, cnn_plda, cnn_softmax_id (a classifier head on the
# enrolment speakers, warm-started from the background CNN), cnn_knn (5-NN vote over the enrolled
# utterances' embeddings). Skipped with one line without PyTorch.

# cnn_fbank SRC DST: DST is a copy of the data dir SRC (its vad.scp included) with 40 log-mel filter
# banks as feats.scp (the MFCC front end's frames: the same VAD applies)
cnn_fbank() {
  local src=$1 dst=$2 f
  done_already "$dst/feats.scp" && return 0
  mkdir -p "$dst"
  for f in wav.scp utt2spk spk2utt spk2gender segments vad.scp; do [ -f "$src/$f" ] && cp "$src/$f" "$dst/$f"; done
  run "$exp/cnn/log/fbank_$(basename "$dst").log" spkrec compute-feats --feat-type fbank --config conf/fbank.conf \
    --seed="${seed:-0}" $par "$dst" "$exp/cnn/fbank"
}

# cnn_systems TRAIN ENROLL TEST EXP LDA_DIM EPOCHS ARCH -> EXP/scores/cnn_{cosine,plda,softmax_id,knn}.txt
cnn_systems() {
  local train=$1 enroll=$2 test=$3 exp=$4 lda_dim=$5 epochs=$6 arch=$7 set d
  local sc=$exp/scores c=$exp/cnn em=$exp/cnn_embeddings
  if ! have_torch; then
    log "  CNN systems skipped: PyTorch is not installed (pip install 'spkrec[rnn]' or pip install torch==2.13.0)"
    return 0
  fi
  for set in train enroll test; do
    d=$train; [ $set = enroll ] && d=$enroll; [ $set = test ] && d=$test
    cnn_fbank "$d" "$c/data/$set"
  done
  done_already "$c/final.pt" || \
    run "$c/log/train.log" spkrec train-cnn --arch "$arch" --epochs "$epochs" --seed "${seed:-0}" $par "$c/data/train" "$c"
  for set in train enroll test; do
    done_already "${em}_$set/embedding.scp" || \
      run "$c/log/extract_$set.log" spkrec extract-embeddings $par "$c" "$c/data/$set" "${em}_$set"
  done
  done_already "$sc/cnn_cosine.txt" || \
    run "$c/log/cosine.log" spkrec score-cosine --enroll-spk2utt "$enroll/spk2utt" \
      "${em}_enroll/embedding.scp" "${em}_test/embedding.scp" "$test/trials" "$sc/cnn_cosine.txt"
  done_already "$c/plda.npz" || \
    run "$c/log/train_plda.log" spkrec train-backend --steps "center,lda:$lda_dim,wccn,lnorm,plda" \
      "${em}_train/embedding.scp" "$train/utt2spk" "$c/plda.npz"
  done_already "$sc/cnn_plda.txt" || \
    run "$c/log/score_plda.log" spkrec score-plda --enroll-spk2utt "$enroll/spk2utt" "$c/plda.npz" \
      "${em}_enroll/embedding.scp" "${em}_test/embedding.scp" "$test/trials" "$sc/cnn_plda.txt"
  done_already "$sc/cnn_knn.txt" || \
    run "$c/log/knn.log" spkrec identify-knn -k 5 --test-utt2spk "$test/utt2spk" \
      "${em}_enroll/embedding.scp" "$enroll/utt2spk" "${em}_test/embedding.scp" "$sc/cnn_knn.txt"
  done_already "$sc/cnn_softmax_id.txt" || \
    run "$c/log/classify.log" spkrec classify-cnn --arch "$arch" --warm-start "$c" --epochs "$epochs" \
      --seed "${seed:-0}" --model-dir "$exp/cnn_classifier" "$c/data/enroll" "$c/data/test" "$sc/cnn_softmax_id.txt"
}

# cnn_bundles TEST EXP -> EXP/systems/cnn_{cosine,plda}/: system bundles of the CNN verification systems
# (log-mel banks as conf/fbank.conf, VAD decided on the MFCC front end's log energy as in stage 1)
cnn_bundles() {
  local test=$1 exp=$2 s
  local common=(--kind cnn --rnn "$exp/cnn" --feat-type fbank --feat-config conf/fbank.conf --vad-config conf/vad.conf
                --vad-feat-config conf/mfcc.conf "--seed=${seed:-0}")
  for s in cnn_cosine cnn_plda; do
    [ -f "$exp/scores/$s.txt" ] || continue
    done_already "$exp/systems/$s/system.json" && continue
    local opts=(--scoring cosine); [ $s = cnn_plda ] && opts=(--scoring plda --backend "$exp/cnn/plda.npz")
    run "$exp/systems/log/$s.log" spkrec export-system "${common[@]}" "${opts[@]}" \
      --eer-threshold-from "$exp/scores/$s.txt" "$test/trials" --out "$exp/systems/$s"
  done
}

# run_cnn_stage: stage 12 (called by utils/stages_classical.sh after stage 11)
run_cnn_stage() {
  if run_stage 12 "CNN speaker embeddings ($cnn_arch, when PyTorch is installed) and their bundles" \
      "$exp/scores/cnn_softmax_id.txt"; then
    cnn_systems "$data/train" "$data/enroll" "$data/test" "$exp" "$lda_dim" "$cnn_epochs" "$cnn_arch"
    if have_torch; then cnn_bundles "$data/test" "$exp"; fi
  fi
}
