"""Your own NNI trial, written by `nnisuite init`: a small PyTorch MLP on scikit-learn's digits.
Replace the model and the data with yours; keep the three NNI calls.

    python train.py                  # once, standalone, with the defaults below
    nnisuite validate config.yml     # the space's names against the names this file reads
    nnisuite run config.yml          # the study: NNI's web UI, progress, export to runs/

NNI runs this file once per trial (config.yml's trialCommand) with the parameters its tuner
chose, from this folder.
"""

import os

import nni
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

# Every parameter the search space tunes has its default here, under the space's own name;
# NNI's values replace them (standalone: none). `nnisuite validate` reads this file and names any
# space name it never reads (a typo there is never tuned).
params = {"hidden": 64, "lr": 0.01, "epochs": 10}
params.update(nni.get_next_parameter())

# `nnisuite repeat` runs a study over seeds and hands each run's seed to every trial
torch.manual_seed(int(os.environ.get("NNISUITE_SEED", "0")))
torch.set_num_threads(1)  # config.yml runs 2 trials at once: one core each

# tune on a validation split; keep a test split for the end (never for choosing)
x, y = load_digits(return_X_y=True)
x = torch.tensor(x / 16.0, dtype=torch.float32)
y = torch.tensor(y)
x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)

model = torch.nn.Sequential(
    torch.nn.Linear(64, int(params["hidden"])),
    torch.nn.ReLU(),
    torch.nn.Linear(params["hidden"], 10),
)
optimizer = torch.optim.Adam(model.parameters(), lr=float(params["lr"]))

accuracy = 0.0
for epoch in range(int(params["epochs"])):
    model.train()
    for batch in torch.randperm(len(x_train)).split(64):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_val).argmax(1) == y_val).float().mean().item()
    nni.report_intermediate_result(accuracy)  # each epoch: the web UI's curves, early stopping
    print(f"epoch {epoch + 1}: validation accuracy {accuracy:.4f}")

nni.report_final_result(accuracy)  # once, at the end: what the tuner maximizes
