"""Results: what NNI stored (store), tables, plots and importance (export), comparisons with
statistics (compare, statistics), the Optuna bridge (optuna), attention maps (attention).
Reads NNI's records; never imports trials/ or models/ (attention maps aside)."""
