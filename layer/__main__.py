"""Entry point of the runtime: ``bootstrap`` runs ``python <layer>/pylambda/runtime``.

Running the directory puts it first on ``sys.path``, which is how the
``pylambda`` package beside this file is found without touching PYTHONPATH
(which the user's own subprocesses would inherit).
"""

import os
import sys

from pylambda.runtime import main

# This file is <layer root>/pylambda/runtime/__main__.py.
layer_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.exit(main(layer_root, unusable_wrapper="--unusable-wrapper" in sys.argv))
