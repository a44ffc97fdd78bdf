"""``python -m faceopt.assets ...``: the same as ``faceopt assets ...``."""
import sys

from faceopt.assets.cli import cli_main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(cli_main(sys.argv[1:]))
