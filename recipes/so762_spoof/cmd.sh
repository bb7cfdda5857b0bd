# Sourced by run.sh (Kaldi's cmd.sh): how per-utterance work runs. Override on the command line:
#   run.sh --nj 2                                   two local processes (joblib/loky)
#   run.sh --backend dask --nj 8                    a local Dask cluster of 8 workers
#   run.sh --backend dask --scheduler tcp://h:8786  an existing Dask cluster
nj=2
backend=loky
scheduler=
