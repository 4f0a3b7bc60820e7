"""``sam build`` + ``sam deploy`` of template.yaml, unmodified, into LocalStack: what AWS would then hold.

The deploys run in order on one stack: a first deploy (x86_64), a second after a
code change that also switches the template's Architecture to arm64, then
``sam delete``. Functions are created but not invoked (LocalStack here has no
container runtime); invoking is the emulator tests' job.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

from testkit.localstack import LocalStack
from tests.conftest import ROOT, installed_env

pytestmark = [pytest.mark.sam, pytest.mark.localstack]
SAM = str(Path(sys.executable).with_name("sam"))
STACK = "pylambda-deploy-test"
# SAM's --resolve-s3 makes its own bucket stack and polls it every 15 s: 20 s of waiting that
# tests nothing of this project, so the artifacts go to a bucket the test makes.
BUCKET = "pylambda-deploy-artifacts"
FUNCTIONS = ("EchoFunction", "FailFunction", "BatchFunction", "GreetFunction", "StreamFunction")
# What sam build needs from the repository: a copy, so the test can change a function's code.
PROJECT_FILES = ("template.yaml", "Makefile", "build.py", "bootstrap", "interpreters.json", "LICENSE")
PROJECT_DIRS = ("pylambda_build", "layer", "functions")


class Deployment:
    """A copy of the project, deployed with the real SAM CLI into LocalStack with boto3 clients to inspect it."""

    def __init__(self, localstack: LocalStack, project: Path) -> None:
        import boto3

        self.project = project
        self.env = localstack.client_env()
        self.env["LAYER_PYTHON"] = "none"  # no interpreter download; the layer's files are the same otherwise
        self.env["SAM_CLI_POLL_DELAY"] = "1"  # LocalStack finishes in seconds; SAM polls every 5 by default
        self.env.pop("LAYER_ARCH", None)
        session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
        self.cloudformation = session.client("cloudformation", endpoint_url=localstack.endpoint)
        self.lambda_ = session.client("lambda", endpoint_url=localstack.endpoint)
        session.client("s3", endpoint_url=localstack.endpoint).create_bucket(Bucket=BUCKET)

    def sam(self, *args: str) -> str:
        done = subprocess.run(
            [SAM, *args], cwd=self.project, env=self.env, capture_output=True, text=True, check=False, timeout=600
        )
        assert done.returncode == 0, f"sam {args[0]} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        return done.stdout + done.stderr

    def build_and_deploy(self, architecture: str) -> None:
        overrides = f"Architecture={architecture}"
        self.sam("build", "--parameter-overrides", overrides)
        self.sam(
            "deploy",
            *("--stack-name", STACK, "--s3-bucket", BUCKET, "--capabilities", "CAPABILITY_IAM"),
            *("--no-confirm-changeset", "--no-fail-on-empty-changeset", "--parameter-overrides", overrides),
        )

    def stack(self) -> dict[str, Any]:
        stack: dict[str, Any] = self.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
        return stack

    def outputs(self) -> dict[str, str]:
        return {output["OutputKey"]: output["OutputValue"] for output in self.stack().get("Outputs", [])}

    def physical_id(self, logical_id: str) -> str:
        resource = self.cloudformation.describe_stack_resource(StackName=STACK, LogicalResourceId=logical_id)
        return str(resource["StackResourceDetail"]["PhysicalResourceId"])

    def function(self, logical_id: str) -> dict[str, Any]:
        configuration: dict[str, Any] = self.lambda_.get_function(FunctionName=self.physical_id(logical_id))[
            "Configuration"
        ]
        return configuration

    def layer_versions(self) -> list[dict[str, Any]]:
        versions: list[dict[str, Any]] = self.lambda_.list_layer_versions(LayerName="pylambda-python-runtime")[
            "LayerVersions"
        ]
        return versions


@pytest.fixture(scope="module")
def deployment(localstack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    """The first deploy: template.yaml as it is, x86_64."""
    project = tmp_path_factory.mktemp("project")
    for name in PROJECT_FILES:
        shutil.copy2(ROOT / name, project / name)
    for name in PROJECT_DIRS:
        shutil.copytree(ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    deployment = Deployment(localstack, project)
    deployment.build_and_deploy("x86_64")
    return deployment


@pytest.fixture(scope="module")
def first_deploy(deployment: Deployment) -> dict[str, Any]:
    """What the first deploy left, read before the second one changes it."""
    return {
        "layer": deployment.layer_versions(),
        "functions": {logical_id: deployment.function(logical_id) for logical_id in FUNCTIONS},
        "outputs": deployment.outputs(),
        "stack": deployment.stack(),
    }


@pytest.fixture(scope="module")
def second_deploy(deployment: Deployment, first_deploy: dict[str, Any]) -> Deployment:
    """A code change in the echo function, and the template's Architecture switched to arm64."""
    app = deployment.project / "functions" / "echo" / "app.py"
    app.write_text(app.read_text() + "\nSECOND_DEPLOY = True  # a code change for the update\n")
    deployment.build_and_deploy("arm64")
    return deployment


def test_deploy_publishes_one_layer_version_for_provided_al2023_and_the_architecture(
    first_deploy: dict[str, Any], deployment: Deployment
) -> None:
    assert first_deploy["stack"]["StackStatus"] == "CREATE_COMPLETE"
    [version] = first_deploy["layer"]
    assert version["CompatibleRuntimes"] == ["provided.al2023"]
    assert version["CompatibleArchitectures"] == ["x86_64"]
    assert version["LayerVersionArn"].endswith(":layer:pylambda-python-runtime:1")


def test_deployed_layer_content_is_the_built_layer(first_deploy: dict[str, Any], deployment: Deployment) -> None:
    [version] = first_deploy["layer"]
    location = deployment.lambda_.get_layer_version_by_arn(Arn=version["LayerVersionArn"])["Content"]["Location"]
    with urllib.request.urlopen(location, timeout=30) as response:
        archive = zipfile.ZipFile(io.BytesIO(response.read()))
    built = deployment.project / ".aws-sam" / "build" / "PythonRuntimeLayer"
    expected = sorted(p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file())
    assert sorted(name for name in archive.namelist() if not name.endswith("/")) == expected
    assert archive.read("bootstrap") == (ROOT / "bootstrap").read_bytes()


def test_every_function_runs_on_provided_al2023_with_the_stacks_layer_version(first_deploy: dict[str, Any]) -> None:
    [version] = first_deploy["layer"]
    for logical_id, function in first_deploy["functions"].items():
        assert function["Runtime"] == "provided.al2023", logical_id
        assert function["Architectures"] == ["x86_64"], logical_id
        assert function["Handler"] == "app.handler", logical_id
        assert [layer["Arn"] for layer in function["Layers"]] == [version["LayerVersionArn"]], logical_id


def test_stream_function_url_keeps_iam_auth_and_response_stream_mode(deployment: Deployment) -> None:
    config = deployment.lambda_.get_function_url_config(FunctionName=deployment.physical_id("StreamFunction"))
    assert config["InvokeMode"] == "RESPONSE_STREAM"
    assert config["AuthType"] == "AWS_IAM"
    assert deployment.outputs()["StreamFunctionUrl"] == config["FunctionUrl"]


def test_http_api_routes_get_greet_to_the_greet_function_in_the_processed_template(deployment: Deployment) -> None:
    # LocalStack's free edition stores AWS::ApiGatewayV2 resources without serving GetApis: read what
    # the Serverless transform made of the HttpApi event instead, as CloudFormation would create it.
    processed = deployment.cloudformation.get_template(StackName=STACK, TemplateStage="Processed")["TemplateBody"]
    resources = (processed if isinstance(processed, dict) else json.loads(processed))["Resources"]
    [api] = [r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Api"]
    route = api["Properties"]["Body"]["paths"]["/greet/{name}"]["get"]
    integration = route["x-amazon-apigateway-integration"]
    assert integration["type"] == "aws_proxy"
    assert integration["payloadFormatVersion"] == "2.0"
    assert "GreetFunction.Arn" in str(integration["uri"])


def test_outputs_name_the_layer_version_the_echo_function_and_the_stream_url(first_deploy: dict[str, Any]) -> None:
    [version] = first_deploy["layer"]
    outputs = first_deploy["outputs"]
    assert outputs["PythonRuntimeLayerArn"] == version["LayerVersionArn"]
    assert outputs["EchoFunctionName"] == first_deploy["functions"]["EchoFunction"]["FunctionName"]
    assert outputs["StreamFunctionUrl"].startswith("http")


def test_second_deploy_after_a_code_change_updates_the_function_and_honours_arm64(
    first_deploy: dict[str, Any], second_deploy: Deployment
) -> None:
    assert second_deploy.stack()["StackStatus"] == "UPDATE_COMPLETE"
    before = first_deploy["functions"]
    echo = second_deploy.function("EchoFunction")
    assert echo["FunctionName"] == before["EchoFunction"]["FunctionName"]  # updated in place, not replaced
    assert echo["CodeSha256"] != before["EchoFunction"]["CodeSha256"]
    newest = second_deploy.layer_versions()[0]
    assert newest["CompatibleArchitectures"] == ["arm64"]
    assert second_deploy.outputs()["PythonRuntimeLayerArn"] == newest["LayerVersionArn"]
    for logical_id in FUNCTIONS:
        function = second_deploy.function(logical_id)
        assert function["Architectures"] == ["arm64"], logical_id
        assert [layer["Arn"] for layer in function["Layers"]] == [newest["LayerVersionArn"]], logical_id


def test_sam_delete_removes_the_stack_and_its_layer_versions(second_deploy: Deployment) -> None:
    assert second_deploy.layer_versions()
    second_deploy.sam("delete", "--stack-name", STACK, "--no-prompts", "--region", "us-east-1")
    assert second_deploy.layer_versions() == []
    stacks = second_deploy.cloudformation.list_stacks()["StackSummaries"]
    assert [s["StackStatus"] for s in stacks if s["StackName"] == STACK] in ([], ["DELETE_COMPLETE"])


def test_the_starter_project_deploys_with_sam_deploy_as_written(
    localstack: LocalStack, pylambda_installed: Path, tmp_path: Path
) -> None:
    """`pylambda new`, `sam build` and `sam deploy` in it, unedited: two layers and a function attaching both."""
    project = tmp_path / "my-project"
    subprocess.run([pylambda_installed / "pylambda", "new", str(project)], check=True, capture_output=True)
    deployment = Deployment(localstack, project)
    deployment.env.update(PATH=installed_env(pylambda_installed)["PATH"])
    deployment.sam("build")
    stack = "pylambda-starter"
    deployment.sam(
        "deploy",
        *("--stack-name", stack, "--s3-bucket", BUCKET, "--capabilities", "CAPABILITY_IAM"),
        "--no-confirm-changeset",
    )
    status = deployment.cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    assert status == "CREATE_COMPLETE"
    resources = deployment.cloudformation.describe_stack_resources(StackName=stack)["StackResources"]
    # SAM names a layer version's logical id after its resource and a hash of its content.
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
    [runtime_layer] = [arn for logical, arn in physical.items() if logical.startswith("PythonRuntimeLayer")]
    [dependencies] = [arn for logical, arn in physical.items() if logical.startswith("DependenciesLayer")]
    function = deployment.lambda_.get_function(FunctionName=physical["HelloFunction"])["Configuration"]
    assert function["Runtime"] == "provided.al2023" and function["Handler"] == "app.handler"
    assert [layer["Arn"] for layer in function["Layers"]] == [runtime_layer, dependencies]
