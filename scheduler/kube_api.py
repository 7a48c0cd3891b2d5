"""The extender's only door to the API server: raw JSON requests and watch streams.

Built on the `kubernetes` client's ApiClient for configuration, auth and TLS, but bypassing its
generated models: they are slow for big lists, and deserialising a Binding's response fails
(kubernetes-client/python#547, #825).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import urllib3
from kubernetes import client, config

DEFAULT_TIMEOUT_S = 10.0


class KubeAPIError(Exception):
    """An API request failed. `status` is the HTTP status, 0 when no response came back."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.message = message

    @property
    def definite(self) -> bool:
        """True when the server answered with a refusal (4xx): the request did not take effect."""
        return 400 <= self.status < 500


def load_api_client(kubeconfig: str | None, *, retries: int | None = None) -> client.ApiClient:
    """A kubeconfig when one is named (flag or KUBECONFIG), else the in-cluster service account.

    `retries=0` turns off urllib3's own retries: a bind has a time budget, and a hidden retry spends it.
    """
    configuration = client.Configuration()
    if kubeconfig or os.environ.get("KUBECONFIG"):
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        config.load_incluster_config(client_configuration=configuration)
    if retries is not None:
        configuration.retries = retries
    return client.ApiClient(configuration)


class KubeAPI:
    def __init__(self, api_client: client.ApiClient, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._api = api_client
        self._timeout_s = timeout_s

    def _send(
        self, method: str, path: str, *, query: Sequence[tuple[str, str]] = (), body: Any = None,
        content_type: str = "application/json", timeout: Any = None,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        method, url, headers, body, _ = self._api.param_serialize(
            method=method, resource_path=path, query_params=list(query) or None,
            header_params=headers, body=body, auth_settings=["BearerToken"],
        )
        try:
            return self._api.call_api(
                method, url, header_params=headers, body=body,
                _request_timeout=timeout if timeout is not None else self._timeout_s,
            )
        except client.ApiException as exc:
            raise KubeAPIError(exc.status or 0, str(exc.reason or exc)) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeAPIError(0, f"{type(exc).__name__}: {exc}") from exc

    def request(
        self, method: str, path: str, *, query: Sequence[tuple[str, str]] = (), body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        response = self._send(method, path, query=query, body=body, content_type=content_type)
        try:
            data = response.read()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeAPIError(0, f"{type(exc).__name__}: {exc}") from exc
        decoded: Any
        try:
            decoded = json.loads(data) if data else {}
        except ValueError:
            decoded = {"message": data[:200].decode(errors="replace")}
        if not 200 <= response.status < 300:
            message = decoded.get("message") if isinstance(decoded, Mapping) else None
            raise KubeAPIError(response.status, str(message or response.reason))
        if not isinstance(decoded, dict):
            raise KubeAPIError(0, f"unexpected response to {method} {path}")
        return decoded

    def list_all(self, path: str, *, query: Sequence[tuple[str, str]] = (), page: int = 500
                 ) -> tuple[list[dict[str, Any]], str]:
        """Every item of a collection (paged) and the list's resourceVersion."""
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            paging = [("limit", str(page))] + ([("continue", token)] if token else [])
            listing = self.request("GET", path, query=[*query, *paging])
            items.extend(listing.get("items") or [])
            meta = listing.get("metadata") or {}
            token = meta.get("continue") or ""
            if not token:
                return items, str(meta.get("resourceVersion") or "")

    def watch(self, path: str, *, resource_version: str, query: Sequence[tuple[str, str]] = (),
              timeout_s: int = 300) -> Iterator[dict[str, Any]]:
        """Watch events ({"type", "object"}) from `resource_version` until the server ends the stream."""
        params = [*query, ("watch", "true"), ("resourceVersion", resource_version),
                  ("allowWatchBookmarks", "true"), ("timeoutSeconds", str(timeout_s))]
        response = self._send("GET", path, query=params, timeout=(10.0, timeout_s + 30.0))
        raw = response.response
        try:
            if not 200 <= response.status < 300:
                body = raw.read()
                raise KubeAPIError(response.status, body[:200].decode(errors="replace"))
            for line in raw:
                if line.strip():
                    yield json.loads(line)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeAPIError(0, f"watch {path}: {type(exc).__name__}: {exc}") from exc
        finally:
            raw.release_conn()
