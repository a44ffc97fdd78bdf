"""Test session setup: quiet progress bars, and chapter results kept out of book/."""
import os
import tempfile

# Set before nbval starts kernels, which inherit the environment.
os.environ.setdefault("FACEOPT_QUIET", "1")
os.environ["FACEOPT_RESULTS_DIR"] = tempfile.mkdtemp(prefix="faceopt-test-results-")
