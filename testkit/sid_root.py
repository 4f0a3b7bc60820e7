"""Debian sid's own CPython 3.13, 3.14 and 3.15, in a root made once, cached, and entered with chroot.

The layer bundles Python 3.12 to 3.15, while these machines run 3.11, and the
interpreter downloads the layer normally bundles cannot be fetched here. Debian
sid packages the newer CPython releases, so the tests and benchmarks run the
runtime on real builds of each version: ``debootstrap`` makes the root once
(under a minute), and it is kept in the cache beside the interpreter downloads.

Entering it changes nothing on the host: ``enter()`` bind-mounts the paths a
run needs into the root, each at the same path, inside a private mount
namespace that ends with the command. An absolute path (a build folder, a task
root, the emulator binary) therefore means the same inside the root and out.
Entering needs root, as chroot does.

    python -m testkit.sid_root               make the root if it is missing; print its path
    python -m testkit.sid_root -- CMD ...    run CMD inside it (this folder bound)
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pylambda_build import BuildError, cache_dir

VERSIONS = ("3.13", "3.14", "3.15")
MIRROR = "http://deb.debian.org/debian"
_COMPLETE = ".pylambda-sid-root"  # written last: a root without it is a partial one

# Binds every path given before "--" at the same place in the root, mounts
# /proc and /dev, then runs the rest in the root, from the current directory.
_ENTER = """
command_path=$PATH PATH=/usr/sbin:/usr/bin:/sbin:/bin  # the script's tools; the command keeps the caller's PATH
root=$1; shift
while [ "$1" != -- ]; do
    mkdir -p "$root$1" && mount --rbind "$1" "$root$1" || exit 125
    shift
done
shift
mount -t proc proc "$root/proc" && mount --rbind /dev "$root/dev" || exit 125
chroot=$(command -v chroot)
PATH=$command_path exec "$chroot" "$root" /bin/sh -c 'cd "$0" && exec "$@"' "$PWD" "$@"
"""


def location() -> Path:
    """Where the root lives: ``$PYLAMBDA_SID_ROOT``, or ``sid-root`` in the download cache."""
    return Path(os.environ.get("PYLAMBDA_SID_ROOT") or cache_dir() / "sid-root")


def ensure(root: Path | None = None) -> Path:
    """The root, made with debootstrap if it is not there yet (installing debootstrap from Debian if needed)."""
    root = root or location()
    if (root / _COMPLETE).exists():
        return root
    if os.geteuid() != 0:
        raise BuildError(f"making the Debian sid root at {root} needs root (debootstrap and chroot)")
    debootstrap = shutil.which("debootstrap") or _install_debootstrap()
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    packages = ",".join(f"python{version}" for version in VERSIONS)
    print(f"sid-root: debootstrap sid with {packages} into {root} (once)", file=sys.stderr)
    command = [debootstrap, "--variant=minbase", f"--include={packages}", "sid", str(partial), MIRROR]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildError(f"debootstrap failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    (partial / _COMPLETE).write_text(" ".join(VERSIONS) + "\n")
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    return root


def python(version: str) -> str:
    """The path of Debian's interpreter for ``version`` inside the root."""
    if version not in VERSIONS:
        raise BuildError(f"the sid root has Python {', '.join(VERSIONS)}, not {version}")
    return f"/usr/bin/python{version}"


def entering(root: Path | None) -> Callable[[list[Path]], list[str]] | None:
    """What the emulator takes as ``enter`` to run inside ``root`` (None: on this machine)."""
    return None if root is None else functools.partial(enter, root)


def enter(root: Path, binds: Sequence[Path | str]) -> list[str]:
    """A command prefix: what follows it runs inside ``root``, with ``binds`` mounted at their own paths."""
    paths = sorted({os.path.abspath(path) for path in binds}, key=len)  # parents before children
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", _ENTER, "sh", str(root), *paths, "--"]


def _install_debootstrap() -> str:
    environ = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "debootstrap"]):
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=environ)
    found = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not Path(found).exists():
        raise BuildError("debootstrap could not be installed")
    return found


def main(argv: Sequence[str]) -> int:
    try:
        root = ensure()
    except BuildError as exc:
        print(f"sid-root: {exc}", file=sys.stderr)
        return 1
    if "--" not in argv:
        print(root)
        return 0
    command = list(argv[argv.index("--") + 1 :])
    return subprocess.run([*enter(root, [os.getcwd()]), *command], check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
