"""The proxy the environment names for an endpoint, read once when a client is built.

Every client of the service (Blob, Cosmos, each model backend) is built with `trust_env=False`, so the HTTP
libraries do not read `~/.netrc` and the proxy variables again on every request; the same variables
(`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, as `urllib.request` reads them) decide here, once, for each endpoint.
"""

from __future__ import annotations

import urllib.request
from urllib.parse import urlparse


def proxies_for(url: str) -> dict[str, str] | None:
    """{"http": ..., "https": ...} of the proxies the environment names for `url`, or None (none, or bypassed)."""
    host = urlparse(url).hostname or ""
    proxies = urllib.request.getproxies()
    if not proxies or urllib.request.proxy_bypass(host):
        return None
    chosen: dict[str, str] = {scheme: proxies[scheme] for scheme in ("http", "https") if scheme in proxies}
    return chosen or None


def proxy_for(url: str) -> str | None:
    """The one proxy a request to `url` goes through (the one for its scheme), or None."""
    proxies = proxies_for(url) or {}
    return proxies.get(urlparse(url).scheme or "https")
