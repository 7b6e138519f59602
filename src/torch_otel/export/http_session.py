"""A requests session for OTLP/HTTP with a private CA (imported only when one is used).

requests lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` replace a session's
``verify`` path on every request, which would silently swap the CA the profile named
for the machine's bundle (and fail, or trust the wrong CAs).
"""

from __future__ import annotations

from typing import Any

import requests


class PinnedCaSession(requests.Session):
    """A requests session whose configured CA file wins over ``REQUESTS_CA_BUNDLE``.

    requests lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` replace a session's
    ``verify`` path on every request, which would silently swap the CA the
    profile named for the machine's bundle (and fail, or trust the wrong CAs).
    """

    def merge_environment_settings(  # type: ignore[override]
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if isinstance(self.verify, str) and verify in (None, True):
            settings["verify"] = self.verify
        return settings
