"""SnapStart's lifecycle for a custom runtime: hooks before the snapshot, the wait for it, hooks after the restore.

With ``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start`` Lambda initialises the
function once, snapshots the environment while the runtime waits on
``restore/next``, and later resumes copies of that snapshot instead of
initialising again. Functions register hooks through ``snapshot_restore_py``,
which the managed Python runtimes provide: the layer carries a pinned copy
beside the runtime, after the task root and dependency layers on ``sys.path``,
so a copy the function ships wins. The runtime looks the module up only if user
code imported it: a function without hooks pays nothing for them.

Failures, as the managed runtime reports them: a before-snapshot hook that raises
fails the init (``Runtime.BeforeSnapshotError``, exit status 64); an after-restore
hook that raises fails the restore (``restore/error``, ``Runtime.AfterRestoreError``,
exit status 65). The error document names the exception, as for any init error.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn, Protocol

from . import logs
from .errors import USER_CODE_FAILURES, error_document

if TYPE_CHECKING:
    from collections.abc import Callable

    from .errors import ErrorDocument

BEFORE_SNAPSHOT_ERROR = "Runtime.BeforeSnapshotError"
AFTER_RESTORE_ERROR = "Runtime.AfterRestoreError"
BEFORE_SNAPSHOT_EXIT = 64
AFTER_RESTORE_EXIT = 65


class LifecycleAPI(Protocol):
    def restore_next(self) -> None: ...
    def post_init_error(self, error: ErrorDocument, error_type: str | None = None) -> None: ...
    def post_restore_error(self, error: ErrorDocument, error_type: str) -> None: ...


def snapshot_and_restore(api: LifecycleAPI) -> None:
    """Run the before-snapshot hooks, wait while Lambda snapshots and later restores, run the after-restore hooks."""
    hooks = sys.modules.get("snapshot_restore_py")
    try:
        if hooks is not None:
            for func, args, kwargs in reversed(list(hooks.get_before_snapshot())):
                func(*args, **kwargs)
        api.restore_next()
    except USER_CODE_FAILURES as exc:
        _fail(exc, lambda error: api.post_init_error(error, BEFORE_SNAPSHOT_ERROR), BEFORE_SNAPSHOT_EXIT)
    try:
        if hooks is not None:
            for func, args, kwargs in list(hooks.get_after_restore()):
                func(*args, **kwargs)
    except USER_CODE_FAILURES as exc:
        _fail(exc, lambda error: api.post_restore_error(error, AFTER_RESTORE_ERROR), AFTER_RESTORE_EXIT)


def _fail(exc: BaseException, report: Callable[[ErrorDocument], None], status: int) -> NoReturn:
    """Log the hook's failure and report it to Lambda, then end the runtime with the managed runtime's status."""
    error = error_document(exc)
    logs.report_error(error)
    report(error)
    raise SystemExit(status) from None
