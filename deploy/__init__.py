"""What a study hands over: its best model retrained over seeds and saved to load without
nnisuite, with a card (best: `nnisuite best`)."""
