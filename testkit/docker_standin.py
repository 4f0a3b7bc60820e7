"""A stand-in for the provided.al2023 base image, so `sam local` runs offline.

    python -m testkit.docker_standin                 prepare, print the image tag, leave the daemon up
    python -m testkit.docker_standin -- CMD [ARGS]   prepare, run CMD with PYLAMBDA_IMAGE set, then
                                                       stop the Docker daemon if this started it

`sam local invoke` runs functions in a container built from
public.ecr.aws/lambda/provided:al2023, which cannot be pulled where only
package registries are reachable (as on these machines). The stand-in is a
minimal Debian (debootstrap, no Python in it) with the public image's
environment variables and working directory, imported into Docker under a
fixed tag. With internet access, use plain `sam local invoke` and the real
image instead.

This installs Docker and debootstrap from Debian's packages when they are
missing (root only), starts a Docker daemon when none answers, and builds the
image once (it is kept by tag).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TAG = "pylambda/provided-al2023-standin:bookworm-2"
# Beyond minbase: OpenSSL's libraries, which the image's own system has and the tests' stand-in interpreter
# links (python-build-standalone links OpenSSL statically); a function that imports ssl needs them.
PACKAGES = ("libssl3",)
# The same, with what the real image has for container-image functions: the emulator, the entrypoint, /var/runtime.
BASE_TAG = "pylambda/provided-al2023-standin:bookworm-2-base"
# The entrypoint as the provided.al2023 image's documentation describes it (written here, not copied).
ENTRYPOINT = """#!/bin/sh
# The handler is the one argument (the image's CMD). The runtime is /var/runtime/bootstrap, run under the
# Runtime Interface Emulator when no Runtime API is given, as in a local `docker run`.
if [ $# -ne 1 ]; then
    echo "lambda-entrypoint.sh: give the handler as the one argument" >&2
    exit 142
fi
export _HANDLER="$1"
if [ -z "${AWS_LAMBDA_RUNTIME_API:-}" ]; then
    exec /usr/local/bin/aws-lambda-rie /var/runtime/bootstrap
fi
exec /var/runtime/bootstrap
"""
BASE_DOCKERFILE = f"""FROM {TAG}
COPY aws-lambda-rie /usr/local/bin/aws-lambda-rie
COPY lambda-entrypoint.sh /lambda-entrypoint.sh
COPY runtime/ /var/runtime/
ENTRYPOINT ["/lambda-entrypoint.sh"]
"""
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# The provided.al2023 image's environment (aws/aws-lambda-base-images, branch provided.al2023).
IMAGE_ENV = {
    "LANG": "en_US.UTF-8",
    "TZ": ":/etc/localtime",
    "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
    "LAMBDA_TASK_ROOT": "/var/task",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
}
WORKDIR = "/var/task"


class Unavailable(Exception):
    """Docker cannot be had here; the message says why."""


def docker() -> str:
    """The Docker client: Debian's, which matches Debian's daemon, before any other on PATH."""
    for candidate in ("/usr/bin/docker", shutil.which("docker")):
        if candidate and os.path.exists(candidate):
            return candidate
    raise Unavailable("no docker client")


def ensure_installed() -> None:
    """Install Debian's docker.io and debootstrap if either is missing."""
    missing = [
        package for package, tool in (("docker.io", "dockerd"), ("debootstrap", "debootstrap")) if not _which(tool)
    ]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise Unavailable(f"{', '.join(missing)} missing, and installing needs root and apt-get")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "text": True}
    subprocess.run(["apt-get", "update", "-qq"], check=False, **quiet)  # type: ignore[call-overload]
    done = subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        check=False,
        **quiet,  # type: ignore[call-overload]
    )
    if done.returncode != 0:
        raise Unavailable(f"apt-get install {' '.join(missing)} failed: {done.stderr.strip()[-500:]}")


def _which(tool: str) -> str | None:
    return shutil.which(tool) or next((p for p in (f"/usr/sbin/{tool}", f"/sbin/{tool}") if os.path.exists(p)), None)


def answers() -> bool:
    """Whether a Docker daemon answers on the default socket."""
    done = subprocess.run([docker(), "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return done.returncode == 0


def start_daemon(log: Path | None = None) -> subprocess.Popen[bytes] | None:
    """Start dockerd unless a daemon answers already; return the process started, if any."""
    if answers():
        return None
    dockerd = _which("dockerd")
    if dockerd is None or os.geteuid() != 0:
        raise Unavailable("no Docker daemon answers, and starting one needs dockerd and root")
    log = log or Path(tempfile.gettempdir()) / "pylambda-dockerd.log"
    with log.open("ab") as output:
        process = subprocess.Popen([dockerd], stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while not answers():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_daemon(process)
            raise Unavailable(f"dockerd did not come up (exit status {process.poll()}); see {log}")
        time.sleep(0.5)
    return process


def stop_daemon(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def daemon() -> Iterator[None]:
    """A Docker daemon for the duration: the one running already, or one started (and then stopped) here."""
    process = start_daemon()
    try:
        yield
    finally:
        if process is not None:
            stop_daemon(process)


def ensure_image(tag: str = TAG) -> str:
    """Build the stand-in image unless Docker already has it; return its tag."""
    inspect = [docker(), "image", "inspect", tag]
    if subprocess.run(inspect, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode == 0:
        return tag
    debootstrap = _which("debootstrap")
    if debootstrap is None:
        raise Unavailable("debootstrap is missing")
    with tempfile.TemporaryDirectory(prefix="pylambda-rootfs-") as rootfs:
        done = subprocess.run(
            [debootstrap, "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, rootfs, MIRROR],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise Unavailable(f"debootstrap failed: {(done.stdout + done.stderr).strip()[-500:]}")
        changes = [f"ENV {name}={value}" for name, value in IMAGE_ENV.items()] + [f"WORKDIR {WORKDIR}"]
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        command = [docker(), "import", *(arg for change in changes for arg in ("-c", change)), "-", tag]
        imported = subprocess.run(command, stdin=tar.stdout, capture_output=True, text=True, check=False)
        tar.wait()
        if imported.returncode != 0:
            raise Unavailable(f"docker import failed: {imported.stderr.strip()}")
    return tag


def ensure_base_image(tag: str = BASE_TAG, *also: str) -> str:
    """The stand-in for container-image builds, built once from the stand-in; also tagged as each of ``also``.

    ``also`` is for a build that names the real image (``FROM public.ecr.aws/lambda/provided:al2023``):
    Docker then finds it here instead of pulling it.
    """
    from pylambda_build.emulator import find_emulator

    inspect = [docker(), "image", "inspect", tag]
    if subprocess.run(inspect, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode != 0:
        ensure_image()
        with tempfile.TemporaryDirectory(prefix="pylambda-base-") as context:
            folder = Path(context)
            shutil.copyfile(find_emulator(), folder / "aws-lambda-rie")
            (folder / "lambda-entrypoint.sh").write_text(ENTRYPOINT)
            (folder / "runtime").mkdir()
            for path in (folder / "aws-lambda-rie", folder / "lambda-entrypoint.sh"):
                path.chmod(0o755)
            (folder / "Dockerfile").write_text(BASE_DOCKERFILE)
            done = subprocess.run([docker(), "build", "-t", tag, context], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise Unavailable(f"docker build of {tag} failed: {done.stderr.strip()[-500:]}")
    for name in also:
        subprocess.run([docker(), "tag", tag, name], check=True, capture_output=True)
    return tag


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS]: run this, then clean up")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    try:
        ensure_installed()
        if not command:
            started = start_daemon()  # left running on purpose: the user goes on to run sam local
            tag = ensure_image()
            if started is not None:
                print(f"started dockerd (pid {started.pid}); it keeps running: kill {started.pid}", file=sys.stderr)
            print(tag)
            return 0
        with daemon():
            tag = ensure_image()
            return subprocess.run(command, env={**os.environ, "PYLAMBDA_IMAGE": tag}, check=False).returncode
    except Unavailable as exc:
        print(f"docker_standin: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
