"""`pip install` of this repository gives the `pylambda` command, which works on a user's own folders and projects.

Everything here runs the installed command from a fresh virtual environment,
outside the clone: a function folder elsewhere under the real emulator, a
dependency layer's zip, and the starter project `pylambda new` writes, built
by the real `sam build` as written. (`sam local invoke` of the starter in Docker is in test_sam_local.py, its
`sam deploy` into LocalStack in test_deploy.py.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, installed_env

SAM = str(Path(sys.executable).with_name("sam"))
MINOR = f"{sys.version_info.major}.{sys.version_info.minor}"


def pylambda(installed: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    command = [str(installed / "pylambda"), *args]
    env_ = installed_env(installed, **env)
    return subprocess.run(command, cwd=cwd, env=env_, capture_output=True, text=True, check=False, timeout=600)


def test_the_wheel_installs_one_package_with_the_runtime_sources_and_nothing_unpacked(
    pylambda_installed: Path,
) -> None:
    [site] = (pylambda_installed.parent / "lib").glob("python3.*/site-packages")
    package = site / "pylambda_build"
    assert (package / "sources" / "bootstrap").stat().st_mode & 0o111
    assert (package / "sources" / "layer" / "pylambda" / "runtime.py").is_file()
    assert (package / "sources" / "interpreters.json").is_file()
    assert (package / "starter" / "template.yaml").is_file()
    # The vendored urllib3 is fetched when a layer is built, not shipped unpacked from the builder's disk.
    assert not (package / "sources" / "layer" / "pylambda" / "_vendor" / "urllib3").exists()
    [record] = site.glob("pylambda-*.dist-info/RECORD")
    tops = {line.split("/", 1)[0] for line in record.read_text().splitlines()}
    assert {top for top in tops if not top.endswith(".dist-info") and top != ".."} == {"pylambda_build"}  # ..: bin/
    assert "../../../bin/pylambda" in {line.split(",")[0] for line in record.read_text().splitlines()}


def test_pylambda_invoke_runs_a_folder_outside_the_repository_with_its_requirements(
    pylambda_installed: Path, tmp_path: Path
) -> None:
    function = tmp_path / "myfn"
    function.mkdir()
    (function / "app.py").write_text(
        "import requests\n\n"
        "def handler(event, context):\n"
        "    return {'event': event, 'requests': requests.__file__, 'name': context.function_name}\n"
    )
    (tmp_path / "requirements.txt").write_text("requests==2.32.5\n")
    done = pylambda(
        pylambda_installed, "invoke", str(function), '{"a": 1}', "--requirements", "requirements.txt", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["event"] == {"a": 1} and answer["name"] == "myfn"
    # From the dependency layer, unpacked beside the runtime layer as in /opt: not from any Python's own packages.
    assert f"/opt/python/lib/python{MINOR}/site-packages/requests/__init__.py" in answer["requests"]
    assert "--- logs of myfn" in done.stderr and "REPORT RequestId" in done.stderr
    assert (tmp_path / ".pylambda" / "layer" / "bootstrap").is_file()  # the build folder, hidden, where it ran


def test_a_function_folder_without_its_requirements_fails_as_on_lambda(
    pylambda_installed: Path, tmp_path: Path
) -> None:
    (tmp_path / "app.py").write_text("import requests\n\ndef handler(event, context):\n    return event\n")
    done = pylambda(pylambda_installed, "invoke", ".", cwd=tmp_path)
    assert done.returncode == 1
    error = json.loads(done.stdout)
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert error["errorMessage"] == "Unable to import module 'app': No module named 'requests'"


def test_pylambda_deps_zip_is_an_uploadable_layer(pylambda_installed: Path, tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("six==1.17.0\n")
    args = ("deps", "requirements.txt", "--into", "deps", "--zip", "deps.zip")
    done = pylambda(pylambda_installed, *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(tmp_path / "deps.zip") as archive:
        names = archive.namelist()
    assert f"python/lib/python{MINOR}/site-packages/six.py" in names
    unzipped = sorted(str(p.relative_to(tmp_path / "deps")) for p in (tmp_path / "deps").rglob("*") if p.is_file())
    assert sorted(names) == unzipped


@pytest.fixture(scope="module")
def starter(pylambda_installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("starter") / "my-project"
    done = pylambda(pylambda_installed, "new", str(project), cwd=project.parent)
    assert done.returncode == 0, done.stderr
    return project


def test_pylambda_new_writes_the_starter_project(starter: Path) -> None:
    files = sorted(str(p.relative_to(starter)) for p in starter.rglob("*") if p.is_file())
    expected = ["Makefile", "README.md", "events/event.json", "hello/app.py", "requirements.txt", "template.yaml"]
    assert files == [".gitignore", *expected]


def sam(installed: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = installed_env(installed)
    return subprocess.run([SAM, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600)


def test_the_starter_passes_sam_validate_lint(starter: Path, pylambda_installed: Path) -> None:
    done = sam(pylambda_installed, "validate", "--lint", cwd=starter)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.sam
def test_the_starter_builds_with_sam_build_as_written(starter: Path, pylambda_installed: Path) -> None:
    done = sam(pylambda_installed, "build", cwd=starter)
    assert done.returncode == 0, done.stdout + done.stderr
    built = starter / ".aws-sam" / "build"
    assert (built / "PythonRuntimeLayer" / "bootstrap").is_file()
    assert (built / "PythonRuntimeLayer" / "pylambda" / "runtime" / "pylambda" / "_vendor" / "urllib3").is_dir()
    site = built / "DependenciesLayer" / "python" / "lib" / f"python{MINOR}" / "site-packages"
    assert (site / "aws_lambda_powertools" / "__init__.py").is_file()
    assert sorted(p.name for p in (built / "HelloFunction").iterdir()) == ["app.py"]


def test_pylambda_invoke_runs_the_starters_function_as_its_readme_says(starter: Path, pylambda_installed: Path) -> None:
    readme = (starter / "README.md").read_text()
    [command] = [line.strip("` ") for line in readme.split("`") if line.startswith("pylambda invoke ")]
    done = pylambda(pylambda_installed, *command.split()[1:], cwd=starter)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"message": "Hello, Ada!"}
    assert '"message":"greeting"' in done.stderr.replace(" ", "")  # Powertools' JSON record, from the layer


def test_the_clone_entry_and_the_installed_command_are_one_implementation() -> None:
    entry = (ROOT / "build.py").read_text()
    assert "from pylambda_build.cli import main" in entry
    assert len([line for line in entry.splitlines() if line.strip() and not line.startswith("#")]) < 15


def fenced(markdown: Path, language: str, containing: str) -> str:
    """The one ``language`` code block of ``markdown`` that contains ``containing``."""
    blocks = [block.partition("```")[0] for block in markdown.read_text().split(f"```{language}\n")[1:]]
    [block] = [block for block in blocks if containing in block]
    return block


@pytest.mark.sam
@pytest.mark.parametrize(
    ("document", "runtime_layer"),
    [("README.md", True), ("docs/deploying.md", False)],
    ids=["layer built in the stack", "published layer by ARN"],
)
def test_the_documented_template_builds_with_sam_build_as_shown(
    pylambda_installed: Path, tmp_path: Path, document: str, runtime_layer: bool
) -> None:
    header = 'AWSTemplateFormatVersion: "2010-09-09"\nTransform: AWS::Serverless-2016-10-31\n'
    (tmp_path / "template.yaml").write_text(header + fenced(ROOT / document, "yaml", "HelloFunction:"))
    (tmp_path / "Makefile").write_text(fenced(ROOT / "README.md", "make", "build-HelloFunction:"))
    (tmp_path / "hello").mkdir()
    (tmp_path / "hello" / "app.py").write_text("import six\n\ndef handler(event, context):\n    return six.PY3\n")
    (tmp_path / "requirements.txt").write_text("six==1.17.0\n")
    assert sam(pylambda_installed, "validate", "--lint", cwd=tmp_path).returncode == 0
    done = sam(pylambda_installed, "build", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    built = tmp_path / ".aws-sam" / "build"
    assert (built / "PythonRuntimeLayer" / "bootstrap").is_file() is runtime_layer
    assert (built / "DependenciesLayer" / "python" / "lib" / f"python{MINOR}" / "site-packages" / "six.py").is_file()
    assert [p.name for p in (built / "HelloFunction").iterdir()] == ["app.py"]
    if not runtime_layer:
        layers = (built / "template.yaml").read_text()
        assert "arn:aws:lambda:us-east-1:123456789012:layer:pylambda-python-315-x86_64:4" in layers
