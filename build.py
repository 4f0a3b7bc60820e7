#!/usr/bin/env python3
"""Build the pylambda layer and the example functions, and run them locally.

    python build.py                        build/layer/ with Python 3.15, build/layer.zip, build/functions/*.zip
    python build.py --python 3.13 --arch arm64
    python build.py --python none          a layer without an interpreter (uses python3 from PATH)
    python build.py invoke echo '{"a": 1}'  run a function on the built layer under the real emulator
    python build.py layer --into DIR        the layer's files only (what `sam build` calls)
    python build.py function echo --into DIR
    python build.py deps functions/order/requirements.txt --into DIR
                                           a dependency layer for the bundled Python (what `sam build` calls)
    python build.py publish --regions us-east-1,eu-west-1 --public
                                           build, publish the layer to each region, write build/layers.json

The build itself uses the standard library only, plus pip to fetch the pinned
urllib3 wheel the runtime vendors and the wheels of dependency layers. Interpreters come from python-build-standalone,
pinned by URL and sha256 in interpreters.json, and are cached (PYLAMBDA_CACHE).
``invoke`` needs the AWS Runtime Interface Emulator, and ``publish`` needs boto3;
the ``aws-sam-cli`` package brings both.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import stat
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from buildlib import BuildError, UsageError, cache_dir, deps, inputs, interpreter
from buildlib.emulator import DEFAULT_HANDLER, Emulator, function_logs
from buildlib.vendoring import vendor

ROOT = Path(__file__).resolve().parent
RUNTIME_SOURCE = ROOT / "layer"
FUNCTIONS = ROOT / "functions"
PINS = ROOT / "interpreters.json"
PROVIDED_AL2023_GLIBC = (2, 34)  # Amazon Linux 2023's glibc: the newest symbol version a layer may need
DEFAULT_OUT = ROOT / "build"

# Zip entries carry this date so that the same sources give the same bytes.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


# --- the layer and the functions --------------------------------------------------------------------


class LayerSpec:
    """Which interpreter goes into the layer: ``python`` is 'none', a version, 'default' or a path."""

    def __init__(
        self,
        python: str = "none",
        arch: str = "x86_64",
        pins: Path = PINS,
        *,
        target_glibc: tuple[int, ...] = PROVIDED_AL2023_GLIBC,
        allow_newer_glibc: bool = False,
        compile_with: Path | None = None,
    ) -> None:
        self.python = python
        self.arch = arch
        self.pins = pins
        self.target_glibc = target_glibc
        self.allow_newer_glibc = allow_newer_glibc
        self.compile_with = compile_with

    def interpreter_source(self) -> Path:
        """The tarball or directory to bundle: a pinned download (cached) or the user's own (``inputs`` checked it)."""
        if re.fullmatch(r"3\.\d+|default", self.python):
            pin = interpreter.find_pin(self.pins, self.python, self.arch)
            return interpreter.download(pin, cache_dir() / "python")
        return Path(self.python)

    def deps_target(self, scratch: Path, layer: Path | None = None) -> deps.Target:
        """What a dependency layer's wheels must fit: the Python this spec bundles, or python3 on PATH for 'none'.

        The interpreter is taken from ``layer`` when that layer was built from
        this spec, else unpacked into ``scratch``; it byte-compiles the layer.
        """
        if self.python == "none":
            python3 = shutil.which("python3")
            if python3 is None:
                raise BuildError("--python none: there is no python3 on PATH to build dependencies for")
            return deps.probe(Path(python3), self.arch)
        bundled = sorted(layer.glob("pylambda/python3.*")) if layer is not None else []
        python = bundled[-1] if bundled else interpreter.install(self.interpreter_source(), scratch, self.arch)
        executable = python / "bin" / "python3"
        try:
            return deps.probe(executable, self.arch)
        except BuildError:  # another architecture's interpreter: the version from its layout, and no compiling
            version = python.name.removeprefix("python")
            abiflags = "t" if (python / "lib" / f"python{version}t").is_dir() else ""
            return deps.Target(version, abiflags, self.arch, None, python.name)


def build_layer(into: Path, spec: LayerSpec) -> None:
    """Lay out the layer's files in ``into``: what Lambda unpacks into /opt."""
    vendor()
    into.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "bootstrap", into / "bootstrap")
    (into / "bootstrap").chmod(0o755)
    runtime = into / "pylambda" / "runtime"
    shutil.rmtree(runtime, ignore_errors=True)
    for source in _source_files(RUNTIME_SOURCE):
        relative = source.relative_to(RUNTIME_SOURCE)
        if relative.name == "vendor.txt" or relative.suffix == ".pinned":
            continue
        _copy(source, runtime / relative)
    if spec.python == "none":
        return
    python = interpreter.install(spec.interpreter_source(), into, spec.arch)
    try:
        glibc = interpreter.check_glibc(python, spec.target_glibc, allow_newer=spec.allow_newer_glibc)
        print(glibc, file=sys.stderr)
        print(f"system     needs {', '.join(interpreter.system_libraries(python))}", file=sys.stderr)
        minor = python.name.removeprefix("python")
        with interpreter.compiler(python, spec.arch, spec.pins, spec.compile_with) as (compiler, name):
            interpreter.byte_compile(compiler, name, minor, python / "lib", runtime)
    except BuildError:
        shutil.rmtree(python)  # no layer that would fail at its first cold start
        raise


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


def package_function(name: str, into: Path) -> None:
    """Copy one function's handler code, and nothing else, into ``into``."""
    source = FUNCTIONS / name
    if not source.is_dir():
        known = ", ".join(sorted(function_names())) or "none"
        raise BuildError(f"no function named {name!r} in {FUNCTIONS} (known: {known})")
    into.mkdir(parents=True, exist_ok=True)
    for path in _source_files(source):
        if path.suffix == ".py":
            _copy(path, into / path.relative_to(source))


def build_deps(requirements: Path, into: Path, spec: LayerSpec, layer: Path | None = None) -> None:
    """Write a dependency layer for ``requirements`` into ``into``, for the Python and arch of ``spec``."""
    with tempfile.TemporaryDirectory(prefix="pylambda-deps-") as scratch:
        target = spec.deps_target(Path(scratch), layer)
        site = deps.build(requirements, into, target, glibc=spec.target_glibc, allow_newer_glibc=spec.allow_newer_glibc)
    print(f"deps       {site}  {deps.size(into / 'python') / 1e6:.2f} MB unzipped", file=sys.stderr)


def cached_deps(requirements: Path, into: Path, spec: LayerSpec, layer: Path) -> None:
    """``build_deps`` into ``into`` and its zip beside it, reused while the requirements, target and code are the same.

    The default build and ``invoke`` build every function's dependency layer;
    without this each run would ask the index, reinstall and rezip (seconds,
    where the rest of the build takes a fraction of one). ``deps`` (what
    `sam build` runs) always resolves afresh.
    """
    with tempfile.TemporaryDirectory(prefix="pylambda-deps-") as scratch:
        target = spec.deps_target(Path(scratch), layer)
    key = hashlib.sha256()
    for part in (requirements.read_bytes(), Path(deps.__file__).read_bytes(), Path(__file__).read_bytes()):
        key.update(hashlib.sha256(part).digest())
    key.update(repr((target.version, target.abiflags, target.arch, target.identity, spec.target_glibc)).encode())
    digest = key.hexdigest()[:32]
    zipped, stamp = into.with_suffix(".zip"), into.with_suffix(".key")
    if into.is_dir() and zipped.exists() and stamp.exists() and stamp.read_text() == digest:
        return
    cached = cache_dir() / "deps" / digest
    if not (cached / "layer.zip").exists():
        shutil.rmtree(cached, ignore_errors=True)
        deps.build(
            requirements, cached / "layer", target, glibc=spec.target_glibc, allow_newer_glibc=spec.allow_newer_glibc
        )
        write_zip(cached / "layer", cached / "layer.zip")  # written last: an entry without it is partial
    shutil.rmtree(into, ignore_errors=True)
    shutil.copytree(cached / "layer", into)
    shutil.copyfile(cached / "layer.zip", zipped)
    stamp.write_text(digest)


def merge_layers(layers: list[Path], opt: Path) -> Path:
    """Unpack layers into one folder, in order, as Lambda does into /opt; returns the folder."""
    for layer in layers:
        shutil.copytree(layer, opt, dirs_exist_ok=True)
    return opt


def function_names() -> list[str]:
    return sorted(path.name for path in FUNCTIONS.iterdir() if path.is_dir() and not path.name.startswith("."))


def build_all(out: Path, spec: LayerSpec) -> None:
    """Build the layer and every function, unpacked and zipped, under ``out``, and their dependency layers."""
    layer = out / "layer"
    shutil.rmtree(layer, ignore_errors=True)
    build_layer(layer, spec)
    write_zip(layer, out / "layer.zip")
    sizes = f"{_size(out / 'layer.zip')} zipped, {_size(layer)} unzipped"
    print(f"layer      {out / 'layer.zip'}  {sizes}", file=sys.stderr)
    for name in function_names():
        with tempfile.TemporaryDirectory() as scratch:
            package_function(name, Path(scratch))
            write_zip(Path(scratch), out / "functions" / f"{name}.zip")
        print(f"function   {out / 'functions' / (name + '.zip')}", file=sys.stderr)
        requirements = FUNCTIONS / name / "requirements.txt"
        if requirements.exists():
            cached_deps(requirements, out / "deps" / name, spec, layer)
            sizes = f"{_size(out / 'deps' / (name + '.zip'))} zipped, {_size(out / 'deps' / name)} unzipped"
            print(f"deps       {out / 'deps' / (name + '.zip')}  {sizes}", file=sys.stderr)


def write_zip(directory: Path, zip_path: Path) -> None:
    """Zip a directory reproducibly: sorted entries, fixed dates, only the exec bit kept from modes."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    partial = zip_path.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_dir():
                continue
            entry = zipfile.ZipInfo(path.relative_to(directory).as_posix(), ZIP_EPOCH)
            entry.create_system = 3  # Unix, so that Lambda honours the mode bits
            mode = 0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644
            entry.external_attr = (stat.S_IFREG | mode) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, path.read_bytes(), compresslevel=9)
    partial.replace(zip_path)


def _source_files(directory: Path) -> Iterator[Path]:
    """Files under ``directory``, without caches or tests."""
    for path in sorted(directory.rglob("*")):
        parts = path.relative_to(directory).parts
        if path.is_file() and not any(p in ("__pycache__", "tests") or p.startswith(".") for p in parts):
            yield path


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(0o644)


def _size(path: Path) -> str:
    total = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return f"{total / 1e6:.2f} MB"


def bundled_python(layer: Path) -> str:
    """The minor version of the interpreter in a built layer ('3.14'), or 'none' for a layer without one."""
    found = sorted(path.name.removeprefix("python") for path in (layer / "pylambda").glob("python3.*"))
    return found[-1] if found else "none"


def publish_layer(out: Path, spec: LayerSpec, args: argparse.Namespace) -> int:
    """Build, then publish build/layer.zip to each region with the permission asked for."""
    from buildlib import publish

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


def invoke(name: str, event: str, out: Path, spec: LayerSpec, *, handler: str, timeout: int) -> int:
    """Run one function once on the built layer; print its response and logs."""
    build_all(out, spec)
    with tempfile.TemporaryDirectory() as task_root, tempfile.TemporaryDirectory() as scratch:
        with zipfile.ZipFile(out / "functions" / f"{name}.zip") as archive:
            archive.extractall(task_root)
        opt = out / "layer"
        if (out / "deps" / name).is_dir():  # both layers in one folder, as in /opt on Lambda
            opt = merge_layers([out / "layer", out / "deps" / name], Path(scratch) / "opt")
        env = {"AWS_LAMBDA_FUNCTION_NAME": name}
        with Emulator(opt / "bootstrap", Path(task_root), handler, env=env, timeout=timeout) as emulator:
            result = emulator.invoke(event, timeout=timeout + 10)
            logs = emulator.wait_for_output("REPORT RequestId", timeout=2)
    print(f"--- logs of {name}", file=sys.stderr)
    print(function_logs(logs), file=sys.stderr)
    print(f"--- response of {name} (HTTP {result.status})", file=sys.stderr)
    sys.stdout.buffer.write(result.body + b"\n")
    return 1 if result.failed or result.status != 200 else 0


def _arch_from_sam(graph: Path, logical_id: str, fallback: str) -> str:
    """The template's architecture for the layer; a $LAYER_ARCH that says otherwise is an error, not a guess."""
    arch = sam_layer_arch(graph, logical_id)
    if arch is None:
        # `sam build PythonRuntimeLayer` (one resource) does not write the graph: say what is built instead.
        print(f"build.py: no {logical_id} in {graph}: building the layer for {fallback} ($LAYER_ARCH)", file=sys.stderr)
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


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in build.py's one-line form instead of a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"build.py: {message}: see {self.prog} --help\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="build folder (default: build/)")
    parser.add_argument(
        "--python",
        default=os.environ.get("LAYER_PYTHON", "default"),
        help="interpreter to bundle: a version pinned in interpreters.json (3.12 to 3.15; 'default' is the newest),"
        " a python-build-standalone tarball or directory, or 'none' to use the python3 on PATH"
        " (default: $LAYER_PYTHON, else 'default')",
    )
    parser.add_argument(
        "--arch",
        choices=sorted(interpreter.TRIPLES),
        default=os.environ.get("LAYER_ARCH", "x86_64"),
        help="the functions' architecture (default: $LAYER_ARCH, else x86_64)",
    )
    parser.add_argument(
        "--pins", type=Path, default=PINS, help="pin table of interpreters (default: interpreters.json)"
    )
    parser.add_argument(
        "--allow-newer-glibc",
        action="store_true",
        default=os.environ.get("LAYER_ALLOW_NEWER_GLIBC") == "1",
        help="build even if the interpreter needs a newer glibc than provided.al2023's 2.34"
        " (default: $LAYER_ALLOW_NEWER_GLIBC=1)",
    )
    parser.add_argument(
        "--compile-with",
        type=Path,
        default=os.environ.get("LAYER_COMPILE_WITH") or None,  # how `sam build` can pass it
        help="for a layer of another architecture than this machine's: a python3 of the bundled version that runs"
        " here, to byte-compile it (default: $LAYER_COMPILE_WITH, else this machine's pinned build of that version,"
        " downloaded once)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=False,
        help="show the traceback behind an error, not just its one line (or set PYLAMBDA_DEBUG=1)",
    )
    commands = parser.add_subparsers(dest="command")
    layer = commands.add_parser("layer", help="write the layer's files into a directory")
    layer.add_argument("--into", type=Path, required=True)
    layer.add_argument(
        "--sam-build-graph",
        type=Path,
        help="sam build's build.toml: the architecture it resolved for the layer named like --into wins over --arch",
    )
    function = commands.add_parser("function", help="write one function's files into a directory")
    function.add_argument("name")
    function.add_argument("--into", type=Path, required=True)
    dependencies = commands.add_parser(
        "deps", help="write a dependency layer's files into a directory, for the Python and arch of the layer"
    )
    dependencies.add_argument("requirements", type=Path, help="a pip requirements file")
    dependencies.add_argument("--into", type=Path, required=True)
    dependencies.add_argument("--sam-build-graph", type=Path, help="as for layer")
    run = commands.add_parser("invoke", help="build, then invoke a function once under the emulator")
    run.add_argument("name", help="a directory under functions/")
    run.add_argument("event", nargs="?", default="{}", help="the event as JSON text (default: {})")
    run.add_argument("--event", dest="event_file", type=Path, help="read the event from this file")
    run.add_argument("--handler", default=DEFAULT_HANDLER, help=f"the _HANDLER (default: {DEFAULT_HANDLER})")
    run.add_argument("--timeout", type=int, default=10, help="the function timeout in seconds (default: 10)")
    release = commands.add_parser(
        "publish", help="build, publish the layer to AWS regions (boto3, standard AWS settings), write layers.json"
    )
    release.add_argument("--regions", required=True, help="comma-separated, e.g. us-east-1,eu-west-1")
    # The build's --python and --arch, also taken after the command: `build.py publish --arch arm64 ...`.
    release.add_argument("--python", default=argparse.SUPPRESS, help="as above")
    release.add_argument("--arch", choices=sorted(interpreter.TRIPLES), default=argparse.SUPPRESS, help="as above")
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
    for command in (layer, function, dependencies, run, release):  # also after the command: `build.py invoke --debug`
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="as above")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    debug = args.debug or os.environ.get("PYLAMBDA_DEBUG") == "1"
    try:
        return run(args)
    # What a user can cause is one line; --debug (or PYLAMBDA_DEBUG=1) shows where it came from.
    # Anything else is build.py's own bug, and keeps its traceback.
    # An OSError is the machine's: a full disk, a permission, a file removed under the build.
    except (BuildError, OSError) as exc:
        if debug:
            raise
        where = " (--debug shows where)" if isinstance(exc, OSError) else ""
        print(f"build.py: {exc}{where}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    except KeyboardInterrupt:
        print("build.py: interrupted", file=sys.stderr)
        return 130


def run(args: argparse.Namespace) -> int:
    """Check every input, then do what the command line asks; the return value is the exit status."""
    if args.command in ("layer", "deps") and args.sam_build_graph:
        args.arch = _arch_from_sam(args.sam_build_graph, args.into.name, args.arch)
    inputs.check(args, function_names())
    spec = LayerSpec(
        args.python, args.arch, args.pins, allow_newer_glibc=args.allow_newer_glibc, compile_with=args.compile_with
    )
    if args.command == "layer":
        build_layer(args.into, spec)
    elif args.command == "function":
        package_function(args.name, args.into)
    elif args.command == "deps":
        build_deps(args.requirements, args.into, spec)
    elif args.command == "publish":
        return publish_layer(args.out, spec, args)
    elif args.command == "invoke":
        return invoke(args.name, args.event, args.out, spec, handler=args.handler, timeout=args.timeout)
    else:
        build_all(args.out, spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
