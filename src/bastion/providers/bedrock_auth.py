"""AWS credentials for Bedrock deployments, found by botocore's credential chain.

Where a deployment's credentials come from, first match wins:

1. ``aws_access_key_id`` + ``aws_secret_access_key`` (+ ``aws_session_token``) in
   litellm_params;
2. ``aws_profile_name``: that profile of the shared credentials/config files;
3. botocore's default chain: environment variables, web identity
   (``AWS_WEB_IDENTITY_TOKEN_FILE`` + ``AWS_ROLE_ARN``), the shared files' default
   profile (or ``AWS_PROFILE``), SSO, ``credential_process``, container and instance roles.

With ``aws_role_name`` the credentials found are the source for an STS AssumeRole
(``aws_session_name``, ``aws_external_id``, ``aws_sts_endpoint``), done on first use
and repeated before the role's credentials expire.

Resolving the chain happens once per distinct source (deployments sharing one are
served by one ``AwsCredentials``). Signing needs frozen credentials: static ones are
frozen once; refreshable ones (roles, web identity, containers) are re-read from
botocore every ``REFRESH_CHECK_S`` seconds in a worker thread, because botocore's
refresh is a blocking network call. No credential value is ever logged.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    Credentials,
    DeferredRefreshableCredentials,
    ReadOnlyCredentials,
    RefreshableCredentials,
)
from botocore.exceptions import BotoCoreError, ClientError

from bastion.core.errors import UpstreamStatusError

REFRESH_CHECK_S = 30.0


@dataclass(frozen=True, slots=True)
class CredentialSpec:
    """The credential settings of one deployment (``aws_*`` litellm_params)."""

    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    profile_name: str | None = None
    role_name: str | None = None
    session_name: str | None = None
    external_id: str | None = None
    sts_endpoint: str | None = None
    region: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, Any], region: str) -> CredentialSpec:
        def text(name: str) -> str | None:
            value = params.get(name)
            return str(value) if value else None

        return cls(
            access_key_id=text("aws_access_key_id"),
            secret_access_key=text("aws_secret_access_key"),
            session_token=text("aws_session_token"),
            profile_name=text("aws_profile_name"),
            role_name=text("aws_role_name"),
            session_name=text("aws_session_name") or text("aws_role_session_name"),
            external_id=text("aws_external_id"),
            sts_endpoint=text("aws_sts_endpoint"),
            region=region,
        )

    @property
    def secrets(self) -> tuple[str | None, ...]:
        return (self.secret_access_key, self.session_token)

    def describe(self) -> str:
        """Where the credentials come from, for messages (never a credential value)."""
        if self.access_key_id or self.secret_access_key:
            source = "aws_access_key_id/aws_secret_access_key"
        elif self.profile_name:
            source = f"AWS profile '{self.profile_name}'"
        else:
            source = "the AWS default credential chain"
        return f"{source} (assuming role {self.role_name})" if self.role_name else source


class CredentialsUnavailable(Exception):
    """No credentials could be found; the message says where they were looked for."""


class AwsCredentials:
    """One credential source, frozen for signing and refreshed before it expires."""

    def __init__(self, credentials: Credentials, describe: str) -> None:
        self._credentials = credentials
        self._describe = describe
        self._refreshable = isinstance(credentials, RefreshableCredentials)
        self._frozen: ReadOnlyCredentials | None = None
        self._check_at = 0.0
        self._lock = asyncio.Lock()
        if not self._refreshable:
            self._frozen = credentials.get_frozen_credentials()
            self._check_at = float("inf")

    @property
    def method(self) -> str:
        return str(getattr(self._credentials, "method", "") or "")

    def current(self) -> ReadOnlyCredentials | None:
        """The frozen credentials when no refresh check is due (the hot path)."""
        if self._frozen is not None and time.monotonic() < self._check_at:
            return self._frozen
        return None

    async def get(self) -> ReadOnlyCredentials:
        frozen = self.current()
        if frozen is not None:
            return frozen
        async with self._lock:
            frozen = self.current()
            if frozen is not None:
                return frozen
            try:
                frozen = await asyncio.to_thread(self._credentials.get_frozen_credentials)
            except (BotoCoreError, ClientError, OSError) as exc:
                raise UpstreamStatusError(
                    f"bedrock: could not obtain AWS credentials from {self._describe} "
                    f"({type(exc).__name__}: {_short(exc)})",
                    status=401,
                    provider="bedrock",
                    error_type="authentication_error",
                ) from None
            if not frozen.access_key or not frozen.secret_key:
                raise UpstreamStatusError(
                    f"bedrock: {self._describe} gave no AWS credentials",
                    status=401,
                    provider="bedrock",
                    error_type="authentication_error",
                )
            self._frozen = frozen
            self._check_at = time.monotonic() + REFRESH_CHECK_S
            return frozen


class CredentialCache:
    """Resolved credential sources by spec, shared by the deployments of a process."""

    def __init__(self) -> None:
        self._sources: dict[CredentialSpec, AwsCredentials] = {}

    def get(self, spec: CredentialSpec) -> AwsCredentials:
        """Raises CredentialsUnavailable when the chain finds nothing."""
        source = self._sources.get(spec)
        if source is None:
            source = AwsCredentials(resolve(spec), spec.describe())
            self._sources[spec] = source
        return source


def resolve(spec: CredentialSpec) -> Credentials:
    """botocore credentials for a spec (no network call: role credentials are deferred)."""
    if spec.access_key_id or spec.secret_access_key:
        if not (spec.access_key_id and spec.secret_access_key):
            raise CredentialsUnavailable(
                "aws_access_key_id and aws_secret_access_key must be set together"
            )
        credentials: Credentials | None = Credentials(
            spec.access_key_id, spec.secret_access_key, spec.session_token, method="explicit"
        )
        session = botocore.session.Session()
    else:
        try:
            session = botocore.session.Session(profile=spec.profile_name)
            credentials = session.get_credentials()
        except BotoCoreError as exc:
            raise CredentialsUnavailable(f"{spec.describe()}: {_short(exc)}") from None
    if credentials is None:
        raise CredentialsUnavailable(
            f"no AWS credentials found in {spec.describe()}: set aws_access_key_id and "
            "aws_secret_access_key, aws_profile_name, or AWS_ACCESS_KEY_ID / AWS_PROFILE / "
            "AWS_WEB_IDENTITY_TOKEN_FILE in the environment"
        )
    if spec.role_name:
        return _assume_role(session, credentials, spec)
    return credentials


def _assume_role(
    session: botocore.session.Session, source: Credentials, spec: CredentialSpec
) -> Credentials:
    assert spec.role_name is not None
    extra: dict[str, Any] = {"RoleSessionName": spec.session_name or "bastion-bedrock"}
    if spec.external_id:
        extra["ExternalId"] = spec.external_id
    creator = functools.partial(
        session.create_client, region_name=spec.region or None, endpoint_url=spec.sts_endpoint
    )
    fetcher = AssumeRoleCredentialFetcher(creator, source, spec.role_name, extra_args=extra)
    return DeferredRefreshableCredentials(fetcher.fetch_credentials, "assume-role")


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
