"""The proxy the environment names for an endpoint, read once when a client is built; the TLS trust, built once.

Every client of the service (Blob, Cosmos, each model backend) is built with `trust_env=False`, so the HTTP
libraries do not read `~/.netrc` and the proxy variables again on every request; the same variables
(`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, as `urllib.request` reads them) decide here, once, for each endpoint.
"""

from __future__ import annotations

import functools
import os
import ssl
import urllib.request
from urllib.parse import urlparse


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The certificate-verifying TLS context the model clients share: the system's trust store, or the one
    `SSL_CERT_FILE` / `SSL_CERT_DIR` name. Loading a trust store takes about 80 ms, which an HTTP client otherwise
    pays for itself, each backend's on a cold start."""
    return ssl.create_default_context(
        cafile=os.environ.get("SSL_CERT_FILE") or None, capath=os.environ.get("SSL_CERT_DIR") or None
    )


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
