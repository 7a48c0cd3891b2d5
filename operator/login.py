"""kopf's login: the kubeconfig `stretto operator --kubeconfig` (or $KUBECONFIG) names, else the pod's
service account, else ~/.kube/config.

kopf's default login goes through the client library, which fixes its kubeconfig path when it is
first imported (before the flag is parsed) and tries in-cluster first; this handler reads the
variable when kopf logs in, so the flag is honoured.
"""

from __future__ import annotations

import os
from typing import Any

import kopf


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    if os.environ.get("KUBECONFIG"):
        return kopf.login_with_kubeconfig(**kwargs)
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
