"""Credentials never shown: the one masking helper of cdrexp (tracking URIs, output URLs).

``mask_secrets`` replaces the password of every ``scheme://user:password@host`` in a text
(any scheme: http, https, postgresql, mysql+pymysql, ftp ...) and the value of
``password=``-like query parameters by ``***``. Messages, params, tags and logged texts
go through it; ``strip_credentials`` drops the user part of a URL altogether (a link for
a browser, which asks for the login itself).
"""
from __future__ import annotations

import re
from typing import Optional
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "***"

# scheme://user:password@  (the password ends at the last '@' before the host; an '@'
# inside a password must be percent-encoded in a URI, so '@', '/' and spaces end it)
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/:@'\"]*):"
                       r"(?P<secret>[^\s/@'\"]+)@")
# ?password=... &sslpassword=... &secret_key=... (SQLAlchemy and driver query options)
_QUERY = re.compile(r"(?P<head>[?&](?:[A-Za-z_]*password|pwd|secret|secret_key|token|"
                    r"access_key|sig|signature)=)(?P<secret>[^&\s'\"]+)", re.IGNORECASE)


def mask_secrets(text) -> str:
    """``text`` (any object; ``str()`` of it) with every URI password and secret-looking
    query value replaced by ``***``: the one helper for everything cdrexp shows or logs."""
    text = str(text)
    if "://" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    return _QUERY.sub(lambda m: f"{m['head']}{MASK}", text)


def split_credentials(url: str) -> tuple[str, Optional[str], Optional[str]]:
    """``url`` without its ``user:password@`` part, and the (decoded) user and password."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    bare = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return bare, unquote(user), unquote(password) if password else None


def strip_credentials(url: str) -> str:
    return split_credentials(url)[0]
