"""The context object: what handlers read about their invoke and their function."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pylambda import errors
from pylambda.context import CognitoIdentity, FunctionInfo, LambdaContext
from pylambda.errors import RuntimeFault

ENVIRON = {
    "AWS_LAMBDA_FUNCTION_NAME": "orders",
    "AWS_LAMBDA_FUNCTION_VERSION": "7",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/orders",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/25/[7]abc",
}
FUNCTION = FunctionInfo(ENVIRON)


def context(**headers: str) -> LambdaContext:
    base = {"Lambda-Runtime-Aws-Request-Id": "req-1", "Lambda-Runtime-Deadline-Ms": str(_now_ms() + 60_000)}
    return LambdaContext(FUNCTION, {**base, **{k.replace("_", "-"): v for k, v in headers.items()}})


def _now_ms() -> int:
    return int(time.time() * 1000)


def test_function_details_come_from_the_environment() -> None:
    ctx = context()
    assert ctx.function_name == "orders"
    assert ctx.function_version == "7"
    assert ctx.memory_limit_in_mb == "512"
    assert ctx.log_group_name == "/aws/lambda/orders"
    assert ctx.log_stream_name == "2026/11/25/[7]abc"


def test_invoke_details_come_from_the_headers() -> None:
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:orders"
    ctx = context(Lambda_Runtime_Invoked_Function_Arn=arn, Lambda_Runtime_Aws_Tenant_Id="tenant-42")
    assert ctx.aws_request_id == "req-1"
    assert ctx.invoked_function_arn == arn
    assert ctx.tenant_id == "tenant-42"


def test_remaining_time_counts_down_to_the_deadline() -> None:
    ctx = context(Lambda_Runtime_Deadline_Ms=str(_now_ms() + 5_000))
    first = ctx.get_remaining_time_in_millis()
    assert 4_000 < first <= 5_000
    time.sleep(0.05)
    assert ctx.get_remaining_time_in_millis() < first


def test_remaining_time_is_never_negative() -> None:
    assert context(Lambda_Runtime_Deadline_Ms=str(_now_ms() - 10_000)).get_remaining_time_in_millis() == 0


@pytest.mark.parametrize("deadline", ["", "soon", "1e12", "-"])
def test_garbled_deadline_means_no_time_left(deadline: str) -> None:
    assert context(Lambda_Runtime_Deadline_Ms=deadline).get_remaining_time_in_millis() == 0


def test_client_context_is_decoded_into_objects() -> None:
    payload = {
        "client": {"installation_id": "inst-1", "app_title": "Shop", "app_version_code": "42"},
        "custom": {"cart": "c-9"},
        "env": {"platform": "Android"},
    }
    ctx = context(Lambda_Runtime_Client_Context=json.dumps(payload))
    assert ctx.client_context is not None
    assert ctx.client_context.client is not None
    assert ctx.client_context.client.installation_id == "inst-1"
    assert ctx.client_context.client.app_title == "Shop"
    assert ctx.client_context.client.app_package_name is None
    assert ctx.client_context.custom == {"cart": "c-9"}
    assert ctx.client_context.env == {"platform": "Android"}


def test_without_client_context_it_is_none() -> None:
    assert context().client_context is None


def test_cognito_identity_is_decoded() -> None:
    identity = {"cognitoIdentityId": "us-east-1:abc", "cognitoIdentityPoolId": "us-east-1:pool"}
    ctx = context(Lambda_Runtime_Cognito_Identity=json.dumps(identity))
    assert isinstance(ctx.identity, CognitoIdentity)
    assert ctx.identity.cognito_identity_id == "us-east-1:abc"
    assert ctx.identity.cognito_identity_pool_id == "us-east-1:pool"


def test_identity_is_an_object_even_without_the_header() -> None:
    ctx = context()
    assert ctx.identity is not None
    assert ctx.identity.cognito_identity_id is None


@pytest.mark.parametrize("header", ["Lambda-Runtime-Client-Context", "Lambda-Runtime-Cognito-Identity"])
@pytest.mark.parametrize("value", ["{not json", "[1, 2]", '"text"'])
def test_garbled_json_header_is_a_context_unmarshal_error(header: str, value: str) -> None:
    with pytest.raises(RuntimeFault) as caught:
        LambdaContext(FUNCTION, {"Lambda-Runtime-Aws-Request-Id": "r", header: value})
    assert caught.value.error_type == errors.CONTEXT_UNMARSHAL_ERROR


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "Lambda-Runtime-Client-Context",
                "Lambda-Runtime-Cognito-Identity",
                "Lambda-Runtime-Deadline-Ms",
                "Lambda-Runtime-Aws-Tenant-Id",
            ]
        ),
        st.text(),
    )
)
def test_any_header_text_gives_a_context_or_a_clean_fault(headers: dict[str, str]) -> None:
    try:
        ctx = LambdaContext(FUNCTION, headers)
    except RuntimeFault as fault:
        assert fault.error_type == errors.CONTEXT_UNMARSHAL_ERROR
    else:
        assert ctx.get_remaining_time_in_millis() >= 0
        repr(ctx)


def test_repr_names_the_request() -> None:
    assert "aws_request_id='req-1'" in repr(context())
