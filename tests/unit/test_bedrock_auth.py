"""SigV4 signing (identical to botocore's) and the AWS credential chain for Bedrock."""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, RefreshableCredentials
from botocore.exceptions import CredentialRetrievalError

from bastion.core.errors import UpstreamStatusError
from bastion.providers import bedrock_auth
from bastion.providers.bedrock_auth import (
    AwsCredentials,
    CredentialCache,
    CredentialSpec,
    CredentialsUnavailable,
    resolve,
)
from bastion.providers.bedrock_sigv4 import SigV4Signer

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
NOW = 1_763_846_412.25


def botocore_authorization(
    url: str,
    body: bytes,
    headers: dict[str, str],
    credentials: Credentials,
    region: str,
    now: float,
) -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    instant = datetime.datetime.fromtimestamp(now, datetime.UTC).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=instant):
        SigV4Auth(credentials, "bedrock", region).add_auth(request)
    return dict(request.headers)


@pytest.mark.parametrize(
    ("url", "token", "headers"),
    [
        (
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/"
            "anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
            None,
            {"Content-Type": "application/json", "Accept": "application/json"},
        ),
        (
            "http://127.0.0.1:8123/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/"
            "converse-stream",
            "FQoGZXIvYXdzEXAMPLETOKEN",
            {"Content-Type": "application/json", "Accept": "application/vnd.amazon.eventstream"},
        ),
        (
            "https://bedrock-runtime.eu-west-1.amazonaws.com/model/arn%3Aaws%3Abedrock%3Aeu-west-1"
            "%3A123456789012%3Aapplication-inference-profile%2Fabc123/invoke",
            "tok",
            {"Content-Type": "application/json", "X-Team": "  a   b ", "User-Agent": "x"},
        ),
    ],
)
def test_signature_matches_botocore(url: str, token: str | None, headers: dict[str, str]) -> None:
    region = url.split(".")[1] if "amazonaws" in url else "us-east-1"
    credentials = Credentials("AKIDEXAMPLE", SECRET, token)
    body = b'{"messages":[{"role":"user","content":[{"text":"hi"}]}]}'
    host = url.split("/")[2]
    path = "/" + url.split("/", 3)[3]
    signer = SigV4Signer(region, host, path, headers)
    for now in (NOW, NOW + 1, NOW + 86_400):  # a new second, then a new day (a new key)
        ours = signer.sign(credentials.get_frozen_credentials(), body, now)
        theirs = botocore_authorization(url, body, headers, credentials, region, now)
        assert ours["Authorization"] == theirs["Authorization"]
        assert ours["X-Amz-Date"] == theirs["X-Amz-Date"]
        assert ours.get("X-Amz-Security-Token") == theirs.get("X-Amz-Security-Token")


def test_signature_depends_on_the_body() -> None:
    signer = SigV4Signer("us-east-1", "h", "/model/m/converse")
    frozen = Credentials("AKID", SECRET).get_frozen_credentials()
    first = signer.sign(frozen, b"{}", NOW)["Authorization"]
    assert signer.sign(frozen, b'{"a":1}', NOW)["Authorization"] != first


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No AWS configuration at all: no variables, no files, no instance metadata."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


def test_explicit_keys_win(aws_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    spec = CredentialSpec(access_key_id="AKIDX", secret_access_key="x-secret", session_token="t")
    frozen = resolve(spec).get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key, frozen.token) == ("AKIDX", "x-secret", "t")


def test_environment_variables(aws_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "env-token")
    frozen = resolve(CredentialSpec()).get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key, frozen.token) == (
        "AKIDENV",
        "env-secret",
        "env-token",
    )


def test_shared_credentials_file_profiles(aws_env: Path) -> None:
    (aws_env / "credentials").write_text(
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = d-secret\n"
        "[team]\naws_access_key_id = AKIDTEAM\naws_secret_access_key = t-secret\n"
    )
    assert resolve(CredentialSpec()).get_frozen_credentials().access_key == "AKIDDEFAULT"
    team = resolve(CredentialSpec(profile_name="team")).get_frozen_credentials()
    assert (team.access_key, team.secret_key) == ("AKIDTEAM", "t-secret")


def test_nothing_found_is_unavailable_not_a_crash(aws_env: Path) -> None:
    with pytest.raises(CredentialsUnavailable, match="default credential chain"):
        resolve(CredentialSpec())
    with pytest.raises(CredentialsUnavailable, match="profile 'ghost'"):
        resolve(CredentialSpec(profile_name="ghost"))
    with pytest.raises(CredentialsUnavailable, match="set together"):
        resolve(CredentialSpec(access_key_id="AKIDONLY"))


def test_cache_resolves_a_source_once(aws_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (aws_env / "credentials").write_text(
        "[other]\naws_access_key_id = AKIDOTHER\naws_secret_access_key = o-secret\n"
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    cache = CredentialCache()
    calls = []
    real = bedrock_auth.resolve
    monkeypatch.setattr(bedrock_auth, "resolve", lambda spec: calls.append(spec) or real(spec))
    first = cache.get(CredentialSpec())
    assert cache.get(CredentialSpec()) is first
    assert cache.get(CredentialSpec(profile_name="other")) is not first
    assert len(calls) == 2


def _metadata(key: str, minutes: float) -> dict[str, str]:
    expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=minutes)
    return {
        "access_key": key,
        "secret_key": f"{key}-secret",
        "token": f"{key}-token",
        "expiry_time": expiry.isoformat(),
    }


async def test_refreshable_credentials_are_refreshed_before_they_expire(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fetched = []

    def refresh() -> dict[str, str]:
        fetched.append(1)
        return _metadata(f"ASIA{len(fetched)}", 60)

    botocore_credentials = RefreshableCredentials.create_from_metadata(
        _metadata("ASIA0", 5), refresh, "test"
    )
    source = AwsCredentials(botocore_credentials, "a test source")
    assert source.current() is None  # nothing frozen yet: the first call checks
    first = await source.get()
    assert first.access_key == "ASIA1" and fetched == [1]  # 5 minutes left: refreshed
    assert source.current() is first  # the hot path: no botocore call
    assert (await source.get()) is first and fetched == [1]
    clock = bedrock_auth.time.monotonic() + bedrock_auth.REFRESH_CHECK_S + 1
    monkeypatch.setattr(bedrock_auth.time, "monotonic", lambda: clock)
    assert source.current() is None
    again = await source.get()  # re-read from botocore; an hour left: no new fetch
    assert again.access_key == "ASIA1" and fetched == [1]


async def test_refresh_failure_is_a_clean_401() -> None:
    def refresh() -> dict[str, str]:
        raise CredentialRetrievalError(provider="sts", error_msg="Not authorized")

    source = AwsCredentials(
        RefreshableCredentials.create_from_metadata(_metadata("ASIA0", -1), refresh, "test"),
        "AWS profile 'x'",
    )
    with pytest.raises(UpstreamStatusError) as caught:
        await source.get()
    assert caught.value.status == 401
    assert caught.value.type == "authentication_error"
    assert "AWS profile 'x'" in caught.value.message
    assert "ASIA0-secret" not in caught.value.message
