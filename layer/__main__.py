"""Entry point of the runtime: ``bootstrap`` runs ``python <layer>/pylambda/runtime``.

Running the directory puts it first on ``sys.path``, which is how the
``pylambda`` package beside this file is found without touching PYTHONPATH
(which the user's own subprocesses would inherit).
"""

import sys

from pylambda.runtime import main

sys.exit(main())
