"""pylambda: build the runtime layer, dependency layers and functions, run functions locally, start a project.

    pylambda new my-project                 a starter project: template.yaml, Makefile, hello/app.py, requirements.txt
    pylambda invoke my-project/hello '{"a": 1}' --requirements my-project/requirements.txt
                                           build the layer, run a function's folder once under the real emulator
    pylambda watch my-project/hello --port 8000
                                           serve a function on localhost as its function URL would, restarted
                                           when its files change (under the real emulator, no Docker)
    pylambda layer --into DIR               the layer's files only (what `sam build` calls)
    pylambda layer --into DIR --python 3.13 --arch arm64
    pylambda deps requirements.txt --into DIR [--zip FILE]
                                           a dependency layer for the layer's Python (what `sam build` calls)
    pylambda function hello --into DIR        a function's files, as its zip carries them
    pylambda publish --regions us-east-1,eu-west-1 --public
                                           build, publish the layer to each region, write build/layers.json

In a clone, `python3 build.py` is the same command, and also knows the
repository's example functions by name (`build.py invoke echo`); without a
command it builds build/layer/, build/layer.zip and build/functions/*.zip.

--python chooses the interpreter the layer bundles: a version pinned in
interpreters.json (downloaded once from python-build-standalone, checked by
sha256, cached in PYLAMBDA_CACHE), a tarball or folder of your own, or 'none'
(no interpreter: python3 from PATH runs the runtime; what ./dev and offline
machines use). The build itself uses the standard library, plus pip for the
pinned urllib3 wheel the runtime vendors and for dependency layers.
``invoke`` needs the AWS Runtime Interface Emulator and ``publish`` needs
boto3: the ``aws-sam-cli`` package brings both.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import NoReturn

from . import CLONE, BuildError, UsageError, __version__, deps, image, inputs, interpreter, new_project, program
from .emulator import DEFAULT_HANDLER, Emulator, function_logs
from .layers import (
    PINS,
    LayerSpec,
    build_deps,
    build_layer,
    bundled_python,
    cached_deps,
    package_function,
    rebuild_layer,
    size_of,
    with_dependencies,
    write_zip,
)

# The repository's example functions, known by name to `build.py invoke echo`; none when installed.
FUNCTIONS = CLONE / "functions" if CLONE is not None else None
# Outside a clone, a hidden folder: a function folder that holds it is not copied into itself.
DEFAULT_OUT = CLONE / "build" if CLONE is not None else Path(".pylambda")


def function_names() -> list[str]:
    """The repository's example functions (none when installed), which build.py also knows by name."""
    return inputs.example_names(FUNCTIONS)


def build_all(out: Path, spec: LayerSpec) -> None:
    """Build the layer and every example function, unpacked and zipped, under ``out``, and their dependency layers."""
    layer = out / "layer"
    rebuild_layer(layer, spec)
    write_zip(layer, out / "layer.zip")
    sizes = f"{size_of(out / 'layer.zip')} zipped, {size_of(layer)} unzipped"
    print(f"layer      {out / 'layer.zip'}  {sizes}", file=sys.stderr)
    for name in function_names():
        assert FUNCTIONS is not None  # there are names only in a clone
        with tempfile.TemporaryDirectory() as scratch:
            package_function(FUNCTIONS / name, Path(scratch))
            write_zip(Path(scratch), out / "functions" / f"{name}.zip")
        print(f"function   {out / 'functions' / (name + '.zip')}", file=sys.stderr)
        requirements = FUNCTIONS / name / "requirements.txt"
        if requirements.exists():
            cached_deps(requirements, out / "deps" / name, spec, layer)
            sizes = f"{size_of(out / 'deps' / (name + '.zip'))} zipped, {size_of(out / 'deps' / name)} unzipped"
            print(f"deps       {out / 'deps' / (name + '.zip')}  {sizes}", file=sys.stderr)


def publish_layer(out: Path, spec: LayerSpec, args: argparse.Namespace) -> int:
    """Build, then publish build/layer.zip to each region with the permission asked for."""
    from pylambda_build import publish

    regions = [region.strip() for region in args.regions.split(",") if region.strip()]
    grant = publish.Grant(public=args.public, organization=args.organization, account=args.account)
    session = publish.aws_session()
    build_all(out, spec)
    python = bundled_python(out / "layer")
    name = args.layer_name or f"pylambda-python-{python.replace('.', '')}-{spec.arch}"
    return publish.publish(
        session,
        out / "layer.zip",
        name,
        regions,
        python=python,
        arch=spec.arch,
        grant=grant,
        layers_json=out / "layers.json",
    )


def invoke(
    source: Path,
    event: str,
    out: Path,
    spec: LayerSpec,
    *,
    requirements: Path | None,
    handler: str,
    timeout: int,
    name: str | None = None,
) -> int:
    """Build the layer, then run the function in ``source`` once on it (and on its dependency layer, if it has
    requirements), as the function ``name`` (default: the folder's name); print its response and logs."""
    layer, folder = out / "layer", source.resolve().name
    name = name or folder
    rebuild_layer(layer, spec)
    with tempfile.TemporaryDirectory() as task_root, tempfile.TemporaryDirectory() as scratch:
        package_function(source, Path(task_root))
        opt = with_dependencies(layer, requirements, out / "deps" / folder, spec, Path(scratch) / "opt")
        env = {"AWS_LAMBDA_FUNCTION_NAME": name}
        with Emulator(opt / "bootstrap", Path(task_root), handler, env=env, timeout=timeout) as emulator:
            result = emulator.invoke(event, timeout=timeout + 10)
            logs = emulator.wait_for_output("REPORT RequestId", timeout=2)
    print(f"--- logs of {name}", file=sys.stderr)
    print(function_logs(logs), file=sys.stderr)
    print(f"--- response of {name} (HTTP {result.status})", file=sys.stderr)
    sys.stdout.buffer.write(result.body + b"\n")
    return 1 if result.failed or result.status != 200 else 0


def sam_layer_arch(graph: Path, logical_id: str) -> str | None:
    """The architecture ``sam build`` resolved for the layer resource ``logical_id``, from its build graph.

    SAM hands a makefile build nothing but ARTIFACTS_DIR, so the template's
    Architecture parameter (``--parameter-overrides``) reaches the build only
    through the build.toml SAM writes before it runs the targets. None when
    there is no graph or no such layer in it (an older or newer SAM): the
    caller falls back to --arch.
    """
    try:
        definitions = tomllib.loads(graph.read_text()).get("layer_build_definitions", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None
    for definition in definitions.values():
        if definition.get("layer") == logical_id and isinstance(definition.get("architecture"), str):
            return str(definition["architecture"])
    return None


def build_image(args: argparse.Namespace, spec: LayerSpec) -> None:
    """The function's image: the runtime layer and its dependency layer in /opt, the function in the task root."""
    name = args.function.resolve().name
    with tempfile.TemporaryDirectory(prefix="pylambda-image-") as scratch:
        layer = Path(scratch) / "layer"
        build_layer(layer, spec)
        opt = with_dependencies(layer, args.requirements, args.out / "deps" / name, spec, Path(scratch) / "opt")
        package_function(args.function, Path(scratch) / "function")
        context = args.context or Path(scratch) / "context"
        image.write_context(context, opt, Path(scratch) / "function", args.base, args.handler)
        if args.tag is None:
            print(
                f"context    {context}: docker build --platform {image.PLATFORMS[spec.arch]} {context}", file=sys.stderr
            )
        else:
            image.build(args.docker, context, args.tag, spec.arch)


def _arch_from_sam(graph: Path, logical_id: str, fallback: str) -> str:
    """The template's architecture for the layer; a $LAYER_ARCH that says otherwise is an error, not a guess."""
    arch = sam_layer_arch(graph, logical_id)
    if arch is None:
        # `sam build PythonRuntimeLayer` (one resource) does not write the graph: say what is built instead.
        print(
            f"{program()}: no {logical_id} in {graph}: building the layer for {fallback} ($LAYER_ARCH)", file=sys.stderr
        )
        return fallback
    if arch not in interpreter.TRIPLES:
        raise BuildError(f"sam build asks for architecture {arch!r}; known: {', '.join(sorted(interpreter.TRIPLES))}")
    if os.environ.get("LAYER_ARCH", arch) != arch:
        raise BuildError(
            f"LAYER_ARCH={os.environ['LAYER_ARCH']} but the template's Architecture is {arch}:"
            " set one, e.g. sam build --parameter-overrides Architecture=arm64"
        )
    return arch


def _organization(value: str) -> str:
    if not re.fullmatch(r"o-[a-z0-9]{10,32}", value):
        raise argparse.ArgumentTypeError(f"{value!r} is not an AWS Organization id (o- and 10 to 32 letters or digits)")
    return value


def _account(value: str) -> str:
    if not re.fullmatch(r"\d{12}", value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a 12-digit AWS account id")
    return value


# --- command line ---------------------------------------------------------------------------------

# Under `sam build` the layer options reach pylambda only as the environment variables its
# Makefile targets inherit: a message that names an option names its variable there instead.
SAM_BUILD_SWITCHES = {
    "--allow-newer-glibc": "LAYER_ALLOW_NEWER_GLIBC=1",
    "--python ": "LAYER_PYTHON=",
    "--arch ": "LAYER_ARCH=",
    "--compile-with ": "LAYER_COMPILE_WITH=",
}


REQUIREMENTS_HELP = (
    "build a dependency layer from this pip requirements file and add it beside the runtime layer"
    " (default: the function folder's requirements.txt, if it has one)"
)


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in the one-line form of every other error instead of a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{program()}: {message}: see {self.prog} --help\n")


def _layer_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The options that choose the layer, taken before the command and after it (``pylambda layer --python 3.13``).

    After the command they default to nothing, so that what was given before it stands.
    """

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    parser.add_argument(
        "--python",
        default=default(os.environ.get("LAYER_PYTHON", "default")),
        help="interpreter to bundle: a version pinned in interpreters.json (3.12 to 3.15; 'default' is the newest),"
        " a python-build-standalone tarball or directory, or 'none' to use the python3 on PATH"
        " (default: $LAYER_PYTHON, else 'default')",
    )
    parser.add_argument(
        "--arch",
        choices=sorted(interpreter.TRIPLES),
        default=default(os.environ.get("LAYER_ARCH", "x86_64")),
        help="the functions' architecture (default: $LAYER_ARCH, else x86_64)",
    )
    parser.add_argument(
        "--pins", type=Path, default=default(PINS), help="pin table of interpreters (default: interpreters.json)"
    )
    parser.add_argument(
        "--allow-newer-glibc",
        action="store_true",
        default=default(os.environ.get("LAYER_ALLOW_NEWER_GLIBC") == "1"),
        help="build even if the interpreter needs a newer glibc than provided.al2023's 2.34"
        " (default: $LAYER_ALLOW_NEWER_GLIBC=1)",
    )
    parser.add_argument(
        "--compile-with",
        type=Path,
        default=default(os.environ.get("LAYER_COMPILE_WITH") or None),
        help="for a layer of another architecture than this machine's: a python3 of the bundled version that runs"
        " here, to byte-compile it (default: $LAYER_COMPILE_WITH, else this machine's pinned build of that version,"
        " downloaded once)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=default(DEFAULT_OUT),
        help=f"build folder of invoke, image and publish (default: {DEFAULT_OUT if CLONE is None else 'build/'})",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="show the traceback behind an error, not just its one line (or set PYLAMBDA_DEBUG=1)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=program(), description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"pylambda {__version__}")
    _layer_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    starter = commands.add_parser("new", help="write a starter project (SAM template, Makefile, function) into DIR")
    starter.add_argument("directory", type=Path, help="a folder that does not exist yet, or is empty")
    layer = commands.add_parser("layer", help="write the layer's files into a directory")
    layer.add_argument("--into", type=Path, required=True)
    layer.add_argument(
        "--sam-build-graph",
        type=Path,
        help="sam build's build.toml: the architecture it resolved for the layer named like --into wins over --arch",
    )
    where = "a folder holding the handler's module" + (", or the name of an example in functions/" if CLONE else "")
    function = commands.add_parser("function", help="write a function's files into a directory, as its zip has them")
    function.add_argument("function", help=where)
    function.add_argument("--into", type=Path, required=True)
    dependencies = commands.add_parser(
        "deps", help="write a dependency layer's files into a directory, for the Python and arch of the layer"
    )
    dependencies.add_argument("requirements", type=Path, help="a pip requirements file")
    dependencies.add_argument("--into", type=Path, required=True)
    dependencies.add_argument("--zip", type=Path, help="also write the layer as a zip to upload, to this file")
    dependencies.add_argument("--sam-build-graph", type=Path, help="as for layer")
    run = commands.add_parser("invoke", help="build the layer, then invoke a function once under the emulator")
    run.add_argument("function", help=where)
    run.add_argument("event", nargs="?", default="{}", help="the event as JSON text (default: {})")
    run.add_argument("--event", dest="event_file", type=Path, help="read the event from this file")
    run.add_argument("--handler", default=DEFAULT_HANDLER, help=f"the _HANDLER (default: {DEFAULT_HANDLER})")
    run.add_argument("--requirements", type=Path, help=REQUIREMENTS_HELP)
    run.add_argument("--timeout", type=int, default=10, help="the function timeout in seconds (default: 10)")
    run.add_argument("--name", help="the function's name, AWS_LAMBDA_FUNCTION_NAME (default: the folder's name)")
    served = commands.add_parser(
        "watch", help="serve a function on localhost as its function URL would, restarted when its files change"
    )
    served.add_argument("function", help=where)
    served.add_argument("--port", type=int, default=8000, help="the port on 127.0.0.1 (default: 8000)")
    served.add_argument("--handler", default=DEFAULT_HANDLER, help=f"the _HANDLER (default: {DEFAULT_HANDLER})")
    served.add_argument("--requirements", type=Path, help=REQUIREMENTS_HELP)
    served.add_argument("--event", dest="event_file", type=Path, help="also invoke with this event at each start")
    served.add_argument("--timeout", type=int, default=30, help="the function timeout in seconds (default: 30)")
    container = commands.add_parser(
        "image", help="build a container image of a function on Lambda's provided.al2023 base image (Docker)"
    )
    container.add_argument("function", help=where)
    output = container.add_mutually_exclusive_group(required=True)
    output.add_argument("--tag", help="build the image with this name and tag, e.g. my-function:latest")
    output.add_argument(
        "--context",
        type=Path,
        help="write the Docker build context (Dockerfile, layers, function) into this new folder instead of building:"
        " for `sam build` (DockerContext) or a build of your own",
    )
    container.add_argument("--base", default=image.DEFAULT_BASE, help=f"the base image (default: {image.DEFAULT_BASE})")
    container.add_argument("--handler", default=DEFAULT_HANDLER, help=f"the image's CMD (default: {DEFAULT_HANDLER})")
    container.add_argument("--requirements", type=Path, help=REQUIREMENTS_HELP)
    release = commands.add_parser(
        "publish", help="build, publish the layer to AWS regions (boto3, standard AWS settings), write layers.json"
    )
    release.add_argument("--regions", required=True, help="comma-separated, e.g. us-east-1,eu-west-1")
    release.add_argument(
        "--layer-name",
        help="default: pylambda-python-<version without dots or 'none'>-<arch>, e.g. pylambda-python-315-arm64",
    )
    who = release.add_mutually_exclusive_group()
    who.add_argument("--public", action="store_true", help="let every AWS account use the published version")
    who.add_argument(
        "--organization", type=_organization, help="let the accounts of this AWS Organization (o-...) use it"
    )
    who.add_argument("--account", type=_account, help="let this 12-digit AWS account use it")
    for command in (layer, function, dependencies, run, served, container, release):
        _layer_options(command, top=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``pylambda ARGS`` and ``python3 build.py ARGS``: the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("PYLAMBDA_DEBUG") == "1"
    if args.command is None and CLONE is None:  # nothing to build by default outside a clone
        parser.print_help(sys.stderr)
        return 2
    try:
        return run(args)
    # What a user can cause is one line; --debug (or PYLAMBDA_DEBUG=1) shows where it came from.
    # Anything else is pylambda's own bug, and keeps its traceback.
    # An OSError is the machine's: a full disk, a permission, a file removed under the build.
    except (BuildError, OSError) as exc:
        if debug:
            raise
        message = str(exc) + (" (--debug shows where)" if isinstance(exc, OSError) else "")
        if getattr(args, "sam_build_graph", None):
            for option, variable in SAM_BUILD_SWITCHES.items():
                message = message.replace(option, variable)
        print(f"{program()}: {message}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    except KeyboardInterrupt:
        print(f"{program()}: interrupted", file=sys.stderr)
        return 130


def run(args: argparse.Namespace) -> int:
    """Check every input, then do what the command line asks; the return value is the exit status."""
    if args.command in ("layer", "deps") and args.sam_build_graph:
        args.arch = _arch_from_sam(args.sam_build_graph, args.into.name, args.arch)
    inputs.check(args, FUNCTIONS)
    if args.command == "new":
        new_project.write(args.directory)
        return 0
    spec = LayerSpec(
        args.python, args.arch, args.pins, allow_newer_glibc=args.allow_newer_glibc, compile_with=args.compile_with
    )
    if args.command == "layer":
        build_layer(args.into, spec)
    elif args.command == "function":
        package_function(args.function, args.into)
    elif args.command == "deps":
        build_deps(args.requirements, args.into, spec)
        if args.zip is not None:
            write_zip(args.into, args.zip)
            print(f"zip        {args.zip}  {deps.size(args.zip) / 1e6:.2f} MB", file=sys.stderr)
    elif args.command == "publish":
        return publish_layer(args.out, spec, args)
    elif args.command == "image":
        build_image(args, spec)
    elif args.command == "watch":
        from . import watch

        return watch.run(
            args.function,
            args.out,
            spec,
            requirements=args.requirements,
            handler=args.handler,
            port=args.port,
            timeout=args.timeout,
            event=args.event,
        )
    elif args.command == "invoke":
        return invoke(
            args.function,
            args.event,
            args.out,
            spec,
            requirements=args.requirements,
            handler=args.handler,
            timeout=args.timeout,
            name=args.name,
        )
    else:
        build_all(args.out, spec)
    return 0
