#!/usr/bin/env python3
"""The repository's entry to the ``pylambda`` command: ``python3 build.py ARGS`` is ``pylambda ARGS``.

It runs from a clone without installing anything (the standard library, plus
pip for wheels); ``pip install .`` gives the same command as ``pylambda``.
``python3 build.py --help`` lists the commands.
"""

import sys

from pylambda_build.cli import main

if __name__ == "__main__":
    sys.exit(main())
