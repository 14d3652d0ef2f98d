"""Guest text made safe to print: no control character, escape sequence or bidi mark reaches a terminal."""

from __future__ import annotations

import re

_UNSAFE = re.compile("[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\e"}


def _escape(m: "re.Match[str]") -> str:
    c = m.group(0)
    named = _NAMED.get(c)
    if named:
        return named
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(s: str, limit: int = 1024) -> str:
    """`s` with control characters escaped (ESC as `\\e`), cut to `limit` characters."""
    cut = s[:limit]
    out = _UNSAFE.sub(_escape, cut)
    return out + (f"... ({len(s) - limit} more characters)" if len(s) > limit else "")
