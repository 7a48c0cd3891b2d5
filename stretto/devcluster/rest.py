"""A minimal JSON-over-HTTPS client for bringing the dev cluster up.

The dev cluster only needs a handful of calls (readiness probes, create nodes, apply the CRD, wait
for conditions) before any Stretto component runs, so it speaks HTTP directly with the admin client
certificate instead of pulling the Kubernetes client library into the `stretto` namespace's core.
"""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ApiError(RuntimeError):
    def __init__(self, status: int, body: str, method: str, path: str) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class RestClient:
    host: str
    port: int
    ca_file: Path
    cert_file: Path
    key_file: Path
    timeout: float = 10.0

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        connection = http.client.HTTPSConnection(self.host, self.port, context=self._context(),
                                                 timeout=self.timeout)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Accept": "application/json"}
            if payload is not None:
                headers["Content-Type"] = content_type
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            text = response.read().decode(errors="replace")
        finally:
            connection.close()
        if response.status >= 300:
            raise ApiError(response.status, text, method, path)
        return json.loads(text) if text and text.lstrip().startswith(("{", "[")) else text

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def create(self, path: str, body: dict[str, Any]) -> Any:
        """POST, treating 'already exists' as success so bring-up steps are idempotent."""
        try:
            return self.request("POST", path, body)
        except ApiError as error:
            if error.status == 409:
                return None
            raise
