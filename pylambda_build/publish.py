"""Publish the built layer to the regions a team uses, and record the ARNs in ``layers.json``.

A team publishes the runtime once per region and account, then attaches it by
ARN from many stacks. This is the one part of the build that talks to AWS, so
it is the one part that needs boto3 (it comes with aws-sam-cli); it is imported
here only. Credentials, profile and endpoint come from the standard AWS
environment, which is how ``AWS_ENDPOINT_URL`` points it at LocalStack.

Publishing is idempotent: Lambda reports each version's ``CodeSha256`` (the
base64 of the zip's sha256), and a region whose latest version already holds
these bytes for this architecture gets no new version.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import BuildError, __version__

RUNTIME = "provided.al2023"
GRANT_ACTION = "lambda:GetLayerVersion"


class RegionRefused(Exception):
    """A region answered, but not as that region (an endpoint that serves another one)."""


class Grant:
    """Who may use the published version: everyone, an AWS Organization, or one account (or nobody extra)."""

    def __init__(self, *, public: bool = False, organization: str | None = None, account: str | None = None) -> None:
        self.public = public
        self.organization = organization
        self.account = account

    def describe(self) -> str | None:
        if self.organization:
            return f"organization {self.organization}"
        if self.account:
            return f"account {self.account}"
        return "public" if self.public else None

    def permission(self) -> dict[str, str] | None:
        """The add_layer_version_permission arguments, with a statement id that names the grant."""
        if self.organization:
            return {"StatementId": f"pylambda-org-{self.organization}", "Principal": "*",
                    "OrganizationId": self.organization}  # fmt: skip
        if self.account:
            return {"StatementId": f"pylambda-account-{self.account}", "Principal": self.account}
        if self.public:
            return {"StatementId": "pylambda-public", "Principal": "*"}
        return None


def code_sha256(content: bytes) -> str:
    """The zip's sha256 as Lambda reports it in CodeSha256: base64 of the digest."""
    return base64.b64encode(hashlib.sha256(content).digest()).decode()


def aws_session() -> Any:
    """A boto3 session with credentials, checked before anything is built: one line if either is missing."""
    try:
        import boto3
    except ImportError:
        raise BuildError("publish needs boto3: pip install boto3 (aws-sam-cli brings it too)") from None
    session = boto3.Session()
    if session.get_credentials() is None:
        raise BuildError(
            "publish: no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        )
    return session


def publish(
    session: Any,
    layer_zip: Path,
    layer_name: str,
    regions: Sequence[str],
    *,
    python: str,
    arch: str,
    grant: Grant,
    layers_json: Path,
) -> int:
    """Publish to each region, one progress line each; record what was published; 1 if any region failed."""
    import botocore.exceptions

    content = layer_zip.read_bytes()
    record = {"arn": "", "sha256": hashlib.sha256(content).hexdigest(), "pylambda": __version__}
    failed = 0
    for region in regions:
        try:
            client = session.client("lambda", region_name=region)
            arn, line = _publish_one(client, content, layer_name, arch=arch, python=python, grant=grant)
            if arn.split(":")[3] != region:
                raise RegionRefused(f"the endpoint answered for another region: {arn}")
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, RegionRefused) as exc:
            print(f"{region}: refused: {_reason(exc)}", file=sys.stderr)
            failed += 1
            continue
        print(f"{region}: {line}", file=sys.stderr)
        _record(layers_json, region, python, arch, {**record, "arn": arn})
    return 1 if failed else 0


def _publish_one(client: Any, content: bytes, name: str, *, arch: str, python: str, grant: Grant) -> tuple[str, str]:
    """(version ARN, progress line) after publishing, or finding, this content in one region."""
    wanted = code_sha256(content)
    latest = _latest_version(client, name)
    if latest and latest["Content"]["CodeSha256"] == wanted and latest.get("CompatibleArchitectures") == [arch]:
        arn, version, line = latest["LayerVersionArn"], latest["Version"], "unchanged"
    else:
        published = client.publish_layer_version(
            LayerName=name,
            Description=f"pylambda {__version__}: Python runtime for {RUNTIME} ({_interpreter(python)}, {arch})",
            Content={"ZipFile": content},
            CompatibleRuntimes=[RUNTIME],
            CompatibleArchitectures=[arch],
        )
        if published["Content"]["CodeSha256"] != wanted:
            raise BuildError(f"{published['LayerVersionArn']}: Lambda stored other bytes than were sent")
        arn, version, line = published["LayerVersionArn"], published["Version"], "published"
    line = f"{line} {arn}"
    permission = grant.permission()
    if permission:
        try:
            client.add_layer_version_permission(
                LayerName=name, VersionNumber=version, Action=GRANT_ACTION, **permission
            )
            line += f", granted to {grant.describe()}"
        except client.exceptions.ResourceConflictException:
            line += f", already granted to {grant.describe()}"
    return arn, line


def _latest_version(client: Any, name: str) -> dict[str, Any] | None:
    """The newest version of the layer with its content details, or None for a layer never published here."""
    try:
        versions = client.list_layer_versions(LayerName=name, MaxItems=1)["LayerVersions"]
    except client.exceptions.ResourceNotFoundException:
        return None
    if not versions:
        return None
    latest: dict[str, Any] = client.get_layer_version_by_arn(Arn=versions[0]["LayerVersionArn"])
    return latest


def _interpreter(python: str) -> str:
    return "no interpreter: runs python3 from PATH" if python == "none" else f"Python {python}"


def _reason(exc: Exception) -> str:
    """One line from a botocore error: AWS's error code and message, never a traceback."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".strip()
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _record(path: Path, region: str, python: str, arch: str, entry: dict[str, str]) -> None:
    """Merge one region's result into layers.json: {region: {python: {arch: {arn, sha256, pylambda}}}}."""
    try:
        layers = json.loads(path.read_text())
    except (OSError, ValueError):
        layers = {}
    if not isinstance(layers, dict):
        layers = {}
    layers.setdefault(region, {}).setdefault(python, {})[arch] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(layers, indent=2, sort_keys=True) + "\n")
    partial.replace(path)
