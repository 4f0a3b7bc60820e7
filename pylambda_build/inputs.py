"""Every input the command (``pylambda``, or build.py in a clone) takes, checked before anything is built.

A mistyped name or a broken file should cost the user one line and no wait:
each check raises a UsageError that says what is wrong and what to do, in
the form ``<what> <what is wrong>: <what to do>``, and the command prints it
after ``pylambda: `` (``build.py: `` in a clone) with exit status 2, as argparse does for its own errors.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
from pathlib import Path

from . import UsageError, image, interpreter, read_input
from .emulator import find_emulator

# Lambda's answer to an invoke whose payload is not JSON.
NOT_JSON = "InvalidRequestContentException: Could not parse request body into json"
# The shape of a region name (a host name label, as botocore checks it); whether
# the region exists is the endpoint's to say, so new regions work on day one.
REGION = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def check(args: argparse.Namespace, examples: Path | None) -> None:
    """Check the arguments of one command line, in the order they are used.

    ``invoke``'s event is read here, once: ``args.event`` is then its JSON text, from the command line or ``--event``.
    ``args.function`` becomes the function's folder, and ``invoke``'s ``args.requirements`` the requirements file
    to build a dependency layer from (the folder's own requirements.txt when none is named), or None.
    """
    command = args.command
    if command == "new":
        check_new_folder(
            "project folder", args.directory, "give a new folder for the project (pylambda new my-project)"
        )
        return
    if command != "function":
        check_python(args.python, args.arch, args.pins)
        if args.compile_with is not None and not os.access(args.compile_with, os.X_OK):
            raise UsageError(f"--compile-with {args.compile_with} is not an executable file: give a python3 to run")
    if command in (None, "invoke", "watch", "publish", "image"):
        check_folder("--out", args.out)
    if command in ("layer", "function", "deps"):
        check_folder("--into", args.into)
    if command in ("function", "invoke", "watch", "image"):
        args.function = check_function(args.function, examples)
    if command == "invoke":
        check_invoke(args)
    if command == "watch":
        check_watch(args)
    if command == "image":
        check_image(args)
    if command == "deps":
        check_requirements(args.requirements)
        if args.zip is not None:
            check_zip(args.zip)
    if command == "publish":
        check_regions(args.regions)


# A Lambda function name, as CreateFunction takes it (1 to 64 letters, digits, hyphens and underscores).
FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def check_invoke(args: argparse.Namespace) -> None:
    """``invoke``'s event, requirements, timeout and name, and the emulator it runs under."""
    args.event = check_event(args.event_file, args.event)
    if args.name is not None and not FUNCTION_NAME.fullmatch(args.name):
        raise UsageError(
            f"--name {args.name!r} is not a function name: give 1 to 64 letters, digits, hyphens or underscores"
        )
    check_emulated_run(args)


def check_watch(args: argparse.Namespace) -> None:
    """``watch``'s port (free, before anything is built), event file, requirements and timeout, and the emulator."""
    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a port: give one from 1 to 65535, e.g. 8000")
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", args.port))
        except OSError as exc:
            problem = f"--port {args.port} cannot be used ({exc.strerror})"
            raise UsageError(f"{problem}: give another, e.g. --port {args.port % 65535 + 1}") from None
    args.event = None if args.event_file is None else check_event(args.event_file, "")
    check_emulated_run(args)


def check_emulated_run(args: argparse.Namespace) -> None:
    """What ``invoke`` and ``watch`` both run a function with: its requirements, its timeout, the emulator."""
    check_dependencies(args)
    if args.timeout < 1:
        raise UsageError(f"--timeout {args.timeout} is not a number of seconds: give 1 or more")
    find_emulator()


def check_image(args: argparse.Namespace) -> None:
    """``image``'s tag or context folder and requirements, then Docker and the base image, which a build needs
    (``args.docker`` is then the client)."""
    check_dependencies(args)
    if args.context is not None:
        check_new_folder("--context", args.context, "give a new folder for the build context")
        return
    if not image.TAG.fullmatch(args.tag):
        raise UsageError(f"--tag {args.tag!r} is not an image name: give one such as my-function:latest (lower case)")
    args.docker = image.docker()
    image.check_base(args.docker, args.base)


def check_dependencies(args: argparse.Namespace) -> None:
    """``--requirements``, or the function folder's own requirements.txt: the file to build a dependency layer from."""
    if args.requirements is not None:
        check_requirements(args.requirements)
    elif (args.function / "requirements.txt").is_file():
        args.requirements = args.function / "requirements.txt"


def check_zip(path: Path) -> None:
    if path.is_dir():
        raise UsageError(f"--zip {path} is a folder: give the path of the zip file to write")
    check_folder(f"--zip {path}: its folder", path.absolute().parent)


def check_python(python: str, arch: str, pins: Path) -> None:
    """--python: 'none', a version pinned for ``arch`` in ``pins``, 'default', or an existing tarball or directory."""
    if python == "none":
        return
    if re.fullmatch(r"3\.\d+t", python):
        raise UsageError(
            f"--python {python}: pylambda does not bundle free-threaded interpreters:"
            f" use the regular build (--python {python[:-1]})"
        )
    if re.fullmatch(r"3\.\d+|default", python):
        try:
            interpreter.find_pin(pins, python, arch)
        except UsageError as exc:
            if str(exc).startswith("--pins"):  # the table itself is broken: its own message says what to do
                raise
            raise UsageError(
                f"--python {python}: {exc}: choose a pinned version, or give a python-build-standalone tarball"
            ) from None
    elif not Path(python).exists():
        raise UsageError(
            f"--python {python} is not 'none', a version such as 3.14, nor a tarball or directory that exists:"
            " give one of those"
        )


def check_folder(option: str, path: Path) -> None:
    """A folder that exists, or can be made (its nearest existing parent is a folder this user may write to)."""
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"{option} {path} is a file, not a folder: give a folder, or a path to create one at")
        return
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{option} {path} cannot be created, as {parent} is a file: give another folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path} cannot be created in {parent} (no write permission): give another folder")


def check_function(name: str, examples: Path | None) -> Path:
    """A function's folder: ``name`` itself, or in a clone the example in functions/ of that name."""
    folder = Path(name)
    if folder.is_dir():
        return folder
    if examples is not None and "/" not in name and (examples / name).is_dir():
        return examples / name
    if folder.exists():
        raise UsageError(f"function {name} is a file, not a folder: give the folder that holds the handler's module")
    known = example_names(examples)
    fix = "give the folder that holds the handler's module" + (f", or one of {', '.join(known)}" if known else "")
    raise UsageError(f"function {name!r} does not exist: {fix}")


def example_names(examples: Path | None) -> list[str]:
    """The example functions in a clone's functions/ folder, by name; none outside a clone."""
    if examples is None:
        return []
    return sorted(path.name for path in examples.iterdir() if path.is_dir() and not path.name.startswith("."))


def check_new_folder(what: str, folder: Path, fix: str) -> None:
    """A folder to create, or an empty one: never one whose files would be overwritten."""
    if folder.is_dir() and any(folder.iterdir()):
        raise UsageError(f"{what} {folder} is not empty: {fix}")
    check_folder(what, folder)


def check_event(event_file: Path | None, event: str) -> str:
    """The event, from --event or the command line; it must be JSON, as Lambda requires of an invoke's payload."""
    where = f"event file {event_file}" if event_file is not None else "event"
    if event_file is not None:
        event = read_input("event file", event_file, "give a file of JSON", "give a file of JSON, or the JSON itself")
    try:
        json.loads(event)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{where} is not JSON ({NOT_JSON}; line {exc.lineno} column {exc.colno}: {exc.msg}):"
            ' give JSON, e.g. \'{"hello": "world"}\''
        ) from None
    return event


def check_requirements(requirements: Path) -> None:
    if requirements.is_dir():
        raise UsageError(f"requirements file {requirements} is a folder: give a pip requirements file")
    read_input("requirements file", requirements, "give a text file", "give a pip requirements file")


def check_regions(regions: str) -> None:
    named = [region.strip() for region in regions.split(",") if region.strip()]
    if not named:
        raise UsageError("--regions names no region: give at least one, e.g. us-east-1,eu-west-1")
    for region in named:
        if not REGION.fullmatch(region):
            raise UsageError(f"--regions: {region!r} is not a region name: give names such as us-east-1")
