#!/usr/bin/env bash
# The options that the outputs of stages 1 and 3-12 of recipes/mini and recipes/so762 depend on
# (stages.sh records them per stage; a rerun with other values redoes the stage). Sourced by run.sh
# after stages.sh; each run.sh adds its own stages 0 and 2.
stage_opts[1]="seed"
stage_opts[3]="num_gauss ubm_iters seed fold_ubm"
stage_opts[4]="relevance"
stage_opts[5]="relevance"
stage_opts[6]="auto_size ivector_num_gauss ivector_ubm tv_dim ivector_iters pool_speakers ubm_iters seed"
stage_opts[7]="lda_dim plda_chain snorm_method snorm_top_n"
stage_opts[8]="relevance snorm_method snorm_top_n"
stage_opts[9]="rnn_epochs lda_dim seed"
stage_opts[10]="target_prior fused cal_znorm"
stage_opts[11]="relevance target_prior snorm_method snorm_top_n fused cal_znorm"
stage_opts[12]="cnn_epochs cnn_arch lda_dim seed"
