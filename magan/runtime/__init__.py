"""What every stage runs on: the training loop, devices (parallel), checkpoints, atomic file I/O,
progress bars, figures and compilation helpers."""
