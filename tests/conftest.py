import os

os.environ.setdefault("MAGAN_QUIET", "1")  # no progress bars in test logs
