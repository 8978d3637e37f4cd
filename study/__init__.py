"""Running studies on NNI: one NNI session with its progress and watchdog (manager, guard), the
runner `nnisuite run` (run), resume (resume), one runner per experiment (claim), repeated
studies (repeat), and Optuna's samplers as NNI tuners (optuna_tuner)."""
