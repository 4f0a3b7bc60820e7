"""``python build.py publish`` into LocalStack: versions per region, permissions, idempotence, layers.json."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pylambda_build.publish import code_sha256
from testkit.localstack import LocalStack
from tests.conftest import ROOT

pytestmark = pytest.mark.localstack
REGIONS = ("us-east-1", "eu-west-1")
Publish = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def publish(localstack: LocalStack, tmp_path: Path, request: pytest.FixtureRequest) -> Publish:
    """Run build.py publish with the standard AWS environment pointed at LocalStack; a layer name per test."""
    layer_name = request.node.name.removeprefix("test_")[:60]

    def run(*args: str, python: str = sys.executable, env: dict[str, str] | None = None) -> Any:
        command = [python, str(ROOT / "build.py"), "--out", str(tmp_path / "build"), "--python", "none"]
        command += ["publish", "--layer-name", layer_name, *args]
        environ = localstack.client_env() if env is None else env
        return subprocess.run(command, env=environ, capture_output=True, text=True, check=False, timeout=120)

    return run


@pytest.fixture
def lambdas(localstack: LocalStack) -> dict[str, Any]:
    import boto3

    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test")
    return {region: session.client("lambda", region, endpoint_url=localstack.endpoint) for region in REGIONS}


def region_lines(stderr: str) -> list[str]:
    """The progress lines, one per region, without the build's own lines."""
    return [line for line in stderr.splitlines() if line.split(":", 1)[0] in (*REGIONS, "mars-east-1")]


def policy(client: Any, arn: str) -> list[dict[str, Any]]:
    name, version = arn.split(":")[6:8]
    statements: list[dict[str, Any]] = json.loads(
        client.get_layer_version_policy(LayerName=name, VersionNumber=int(version))["Policy"]
    )["Statement"]
    return statements


def test_publish_puts_the_layer_in_each_region_public_and_records_it_in_layers_json(
    publish: Publish, lambdas: dict[str, Any], tmp_path: Path
) -> None:
    done = publish("--regions", ",".join(REGIONS), "--public")
    assert done.returncode == 0, done.stderr
    layer_zip = (tmp_path / "build" / "layer.zip").read_bytes()
    layers = json.loads((tmp_path / "build" / "layers.json").read_text())
    assert sorted(layers) == sorted(REGIONS)
    lines = region_lines(done.stderr)
    for region, line in zip(REGIONS, lines, strict=True):
        entry = layers[region]["none"]["x86_64"]
        assert entry["sha256"] == hashlib.sha256(layer_zip).hexdigest()
        assert line == f"{region}: published {entry['arn']}, granted to public"
        [version] = lambdas[region].list_layer_versions(LayerName=entry["arn"].split(":")[6])["LayerVersions"]
        assert version["LayerVersionArn"] == entry["arn"]
        assert entry["arn"].startswith(f"arn:aws:lambda:{region}:")
        assert version["CompatibleRuntimes"] == ["provided.al2023"]
        assert version["CompatibleArchitectures"] == ["x86_64"]
        stored = lambdas[region].get_layer_version_by_arn(Arn=entry["arn"])
        assert stored["Content"]["CodeSha256"] == code_sha256(layer_zip)
        [statement] = policy(lambdas[region], entry["arn"])
        assert statement["Principal"] == "*"
        assert statement["Action"] == "lambda:GetLayerVersion"


def test_publishing_the_same_content_again_makes_no_new_version_and_says_the_grant_exists(
    publish: Publish, lambdas: dict[str, Any], tmp_path: Path
) -> None:
    first = publish("--regions", ",".join(REGIONS), "--public")
    assert first.returncode == 0, first.stderr
    recorded = (tmp_path / "build" / "layers.json").read_text()
    again = publish("--regions", ",".join(REGIONS), "--public")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "build" / "layers.json").read_text() == recorded
    layers = json.loads(recorded)
    for region, line in zip(REGIONS, region_lines(again.stderr), strict=True):
        arn = layers[region]["none"]["x86_64"]["arn"]
        assert line == f"{region}: unchanged {arn}, already granted to public"
        assert len(lambdas[region].list_layer_versions(LayerName=arn.split(":")[6])["LayerVersions"]) == 1
        assert len(policy(lambdas[region], arn)) == 1


def test_another_architecture_is_a_new_version_recorded_beside_the_first(publish: Publish, tmp_path: Path) -> None:
    assert publish("--regions", "us-east-1").returncode == 0
    done = publish("--regions", "us-east-1", "--arch", "arm64")
    assert done.returncode == 0, done.stderr
    recorded = json.loads((tmp_path / "build" / "layers.json").read_text())["us-east-1"]["none"]
    assert recorded["x86_64"]["arn"].endswith(":1")
    assert recorded["arm64"]["arn"].endswith(":2")
    assert region_lines(done.stderr) == [f"us-east-1: published {recorded['arm64']['arn']}"]


def test_organization_grant_lets_everyone_in_the_organization_get_the_version(
    publish: Publish, lambdas: dict[str, Any], tmp_path: Path
) -> None:
    done = publish("--regions", "us-east-1", "--organization", "o-a1b2c3d4e5")
    assert done.returncode == 0, done.stderr
    arn = json.loads((tmp_path / "build" / "layers.json").read_text())["us-east-1"]["none"]["x86_64"]["arn"]
    assert region_lines(done.stderr) == [f"us-east-1: published {arn}, granted to organization o-a1b2c3d4e5"]
    # LocalStack keeps the statement but drops its PrincipalOrgID condition from the stored policy.
    [statement] = policy(lambdas["us-east-1"], arn)
    assert statement["Sid"] == "pylambda-org-o-a1b2c3d4e5"
    assert statement["Principal"] == "*"
    assert statement["Action"] == "lambda:GetLayerVersion"


def test_account_grant_names_that_account(publish: Publish, lambdas: dict[str, Any], tmp_path: Path) -> None:
    done = publish("--regions", "eu-west-1", "--account", "123456789012")
    assert done.returncode == 0, done.stderr
    arn = json.loads((tmp_path / "build" / "layers.json").read_text())["eu-west-1"]["none"]["x86_64"]["arn"]
    [statement] = policy(lambdas["eu-west-1"], arn)
    assert "123456789012" in str(statement["Principal"])
    assert statement["Action"] == "lambda:GetLayerVersion"


def test_a_region_that_refuses_gets_one_line_and_the_others_are_still_published(
    publish: Publish, tmp_path: Path
) -> None:
    # LocalStack answers an unknown region as us-east-1; publish notices the ARN names another region.
    done = publish("--regions", "us-east-1,mars-east-1")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert any(line.startswith("us-east-1: published arn:aws:lambda:us-east-1:") for line in lines)
    assert "mars-east-1: refused: the endpoint answered for another region: arn:aws:lambda:us-east-1:" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(json.loads((tmp_path / "build" / "layers.json").read_text())) == ["us-east-1"]


def test_missing_credentials_get_one_line_and_nothing_is_built(publish: Publish, localstack: LocalStack) -> None:
    env = {k: v for k, v in localstack.client_env().items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    env["AWS_EC2_METADATA_DISABLED"] = "true"  # no instance role to look for
    done = publish("--regions", "us-east-1", env=env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "build.py: publish: no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    ]


def test_publish_without_boto3_says_how_to_get_it(publish: Publish, bare_python_dir: Path) -> None:
    done = publish("--regions", "us-east-1", python=str(bare_python_dir / "python3"))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "build.py: publish needs boto3: pip install boto3 (aws-sam-cli brings it too)"
    )
    assert "Traceback" not in done.stderr
