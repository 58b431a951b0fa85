"""A managed-identity endpoint on 127.0.0.1 speaking the App Service protocol, as the Functions host does.

azure-identity (through MSAL) sends ``GET $IDENTITY_ENDPOINT?api-version=2019-08-01&resource=<audience>``
plus ``&client_id=<id>`` for a user-assigned identity, with the header ``X-IDENTITY-HEADER:
$IDENTITY_HEADER``, and reads ``access_token`` and ``expires_on`` (epoch seconds, a string) from the
JSON answer; an answer without a token carries ``statusCode`` and ``message``.

The tokens are JWT-shaped and hold the claims Entra ID puts in them: ``api://AzureADTokenExchange``
gets a v2 token (issuer ``login.microsoftonline.com/<tenant>/v2.0``, aud the token-exchange app's ID),
any other audience a v1 token (issuer ``sts.windows.net/<tenant>/``, aud the audience requested);
``sub`` is the identity's principal ID. Their signature is random bytes: nothing here verifies a
token, no more than moto's STS does.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_VERSION = "2019-08-01"
TENANT_ID = "8a2b7c1e-3d4f-4a5b-9c6d-7e8f9a0b1c2d"
SYSTEM_ASSIGNED_PRINCIPAL_ID = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
FEDERATION_AUDIENCE = "api://AzureADTokenExchange"
FEDERATION_APP_ID = "fb60f99c-7a34-4190-8149-302f77469936"
V1_ISSUER = f"https://sts.windows.net/{TENANT_ID}/"
V2_ISSUER = f"https://login.microsoftonline.com/{TENANT_ID}/v2.0"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def token_claims(resource: str, principal_id: str, lifetime_seconds: int) -> dict[str, Any]:
    now = int(time.time())
    if resource == FEDERATION_AUDIENCE:
        issuer, audience, version = V2_ISSUER, FEDERATION_APP_ID, "2.0"
    else:
        issuer, audience, version = V1_ISSUER, resource, "1.0"
    return {
        "iss": issuer,
        "aud": audience,
        "sub": principal_id,
        "oid": principal_id,
        "tid": TENANT_ID,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime_seconds,
        "ver": version,
        "uti": uuid.uuid4().hex,
    }


def jwt_shaped(claims: Mapping[str, Any]) -> str:
    header = {"alg": "RS256", "typ": "JWT", "kid": "loopback"}
    return ".".join(
        (
            b64url(json.dumps(header).encode()),
            b64url(json.dumps(claims).encode()),
            b64url(secrets.token_bytes(64)),
        )
    )


@dataclass(frozen=True)
class TokenRequest:
    """One request the endpoint received, and the token it answered with (None: refused)."""

    resource: str | None
    client_id: str | None
    api_version: str | None
    header_ok: bool
    token: str | None


class ManagedIdentityEndpoint:
    """Issues tokens for a system-assigned identity and the user-assigned ones given (client ID ->
    principal ID); refuses what App Service refuses; records every request."""

    path = "/msi/token"

    def __init__(
        self,
        *,
        user_assigned: Mapping[str, str] | None = None,
        system_assigned: bool = True,
        lifetime_seconds: int = 24 * 3600,
    ) -> None:
        self.user_assigned = dict(user_assigned or {})
        self.system_assigned = system_assigned
        self.lifetime_seconds = lifetime_seconds
        self.header_secret = secrets.token_hex(16)
        self.requests: list[TokenRequest] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def hits(self) -> int:
        with self._lock:
            return len(self.requests)

    @property
    def url(self) -> str:
        assert self._server is not None, "start the endpoint first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self.path}"

    def environment(self) -> dict[str, str]:
        """What the Functions host sets when the app has a managed identity."""
        return {"IDENTITY_ENDPOINT": self.url, "IDENTITY_HEADER": self.header_secret}

    def answer(self, query: Mapping[str, str], header: str | None) -> tuple[int, dict[str, Any]]:
        resource, client_id = query.get("resource"), query.get("client_id")
        status, body = self._issue(query.get("api-version"), resource, client_id, header)
        request = TokenRequest(
            resource=resource,
            client_id=client_id,
            api_version=query.get("api-version"),
            header_ok=header == self.header_secret,
            token=body.get("access_token"),
        )
        with self._lock:
            self.requests.append(request)
        return status, body

    def _issue(
        self, api_version: str | None, resource: str | None, client_id: str | None, header: str | None
    ) -> tuple[int, dict[str, Any]]:
        if header != self.header_secret:
            return 401, {"statusCode": 401, "message": "The X-IDENTITY-HEADER header is missing or wrong."}
        if api_version != API_VERSION:
            return 400, {"statusCode": 400, "message": f"api-version {api_version!r} is not supported."}
        if not resource:
            return 400, {"statusCode": 400, "message": "The resource parameter is required."}
        if client_id:
            principal_id = self.user_assigned.get(client_id)
            if principal_id is None:
                return 400, {
                    "statusCode": 400,
                    "message": "No User Assigned or Delegated Managed Identity found for specified ClientId.",
                }
        elif self.system_assigned:
            principal_id = SYSTEM_ASSIGNED_PRINCIPAL_ID
        else:
            return 400, {"statusCode": 400, "message": "No managed identity is assigned to this app."}
        claims = token_claims(resource, principal_id, self.lifetime_seconds)
        return 200, {
            "access_token": jwt_shaped(claims),
            "expires_on": str(claims["exp"]),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": client_id or str(uuid.uuid5(uuid.NAMESPACE_URL, principal_id)),
        }

    def start(self) -> ManagedIdentityEndpoint:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                split = urlsplit(self.path)
                if split.path != endpoint.path:
                    self._send(404, {"statusCode": 404, "message": "Not found."})
                    return
                query = {key: values[0] for key, values in parse_qs(split.query).items()}
                self._send(*endpoint.answer(query, self.headers.get("X-IDENTITY-HEADER")))

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return None  # quiet: the tests read self.requests instead

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, name="identity-endpoint", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ManagedIdentityEndpoint:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
