"""Per-invoke ids and X-Ray trace ids, with one invoke at a time and with several at once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

LAYER = Path(__file__).resolve().parents[2] / "layer"


def run(code: str) -> str:
    program = f"import sys\nsys.path.insert(0, {str(LAYER)!r})\n" + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True).stdout


def test_one_invoke_at_a_time_puts_the_trace_id_in_the_environment_for_every_thread() -> None:
    out = run("""
        import os, threading
        from pylambda import request_context
        request_context.enter("req-1", None, "Root=1-a")
        seen = []
        look = lambda: seen.append((request_context.request_id(), os.environ.get("_X_AMZN_TRACE_ID")))
        t = threading.Thread(target=look)
        t.start(); t.join()
        request_context.enter("req-2", None, None)
        print(seen[0], os.environ.get("_X_AMZN_TRACE_ID"))
    """)
    assert out.strip() == "('req-1', 'Root=1-a') None"


def test_concurrent_invokes_each_read_their_own_trace_id_from_the_environment() -> None:
    out = run("""
        import os, threading
        from pylambda import request_context
        request_context.serve_concurrently()
        barrier = threading.Barrier(8)
        results = {}
        def invoke(n):
            request_context.enter(f"req-{n}", f"tenant-{n}", f"Root=1-{n}")
            barrier.wait()  # everyone has entered before anyone reads
            results[n] = (request_context.request_id(), request_context.tenant_id(),
                          os.environ["_X_AMZN_TRACE_ID"], os.getenv("_X_AMZN_TRACE_ID"))
        threads = [threading.Thread(target=invoke, args=(n,)) for n in range(8)]
        [t.start() for t in threads]; [t.join() for t in threads]
        ok = all(results[n] == (f"req-{n}", f"tenant-{n}", f"Root=1-{n}", f"Root=1-{n}") for n in range(8))
        print(ok, "_X_AMZN_TRACE_ID" in os.environ, os.environ.get("HOME") is not None)
    """)
    assert out.strip() == "True False True"
