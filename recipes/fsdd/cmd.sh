# Sourced by run.sh (Kaldi's cmd.sh): how per-utterance work runs and what the terminal shows. Override on
# the command line:
#   run.sh --nj 2                                   two local processes (joblib/loky)
#   run.sh --backend dask --nj 8                    a local Dask cluster of 8 workers
#   run.sh --backend dask --scheduler tcp://h:8786  an existing Dask cluster
nj=1            # parallel jobs of every per-utterance command (results are identical for any value; fsdd: 1,
                # its jobs are small: run.sh runs --fold-jobs folds at once instead)
backend=loky    # loky (local processes) or dask (a Dask cluster)
scheduler=      # with --backend dask: the address tcp://HOST:PORT of a running cluster (empty: a local one)
verbose=false   # true: every command prints all its messages (debug and per-chunk progress) on the terminal
quiet=false     # true: only warnings, errors and the results table on the terminal (the logs keep everything)
