"""Values that come back from a host (log lines, lock files, names, manifests) are input.

A host is less trusted than the machine deploying: a hand-edited or compromised box may
send anything. So every value is checked for type and shape right where it is parsed,
and anything that reaches the terminal has its control characters removed first. Nothing
here raises on bad input: a value that does not fit is simply not there.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Any

SHA256 = re.compile(r"[0-9a-f]{64}")
# C0 controls except tab and newline, DEL, and the C1 controls (which some terminals obey,
# e.g. U+009B as CSI): an escape sequence in a log line must not drive the terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
HEX_PREFIX = "hex:"
MAX_JSON = 64 * 1024  # one log line or lock record; longer is not ours


def is_sha256(value: object) -> bool:
    """A full lowercase hex sha256, the only digest form the tool ever writes."""
    return isinstance(value, str) and SHA256.fullmatch(value) is not None


def integer(value: object) -> int | None:
    """``value`` if it is a real integer (JSON ``true`` is not 1 here), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


MAX_RELEASE = 10**9  # far past any real count; a bigger "release" in a log is not ours


def release_number(value: object) -> int | None:
    """A release number: an integer from 1 to :data:`MAX_RELEASE`, else None."""
    found = integer(value)
    return found if found is not None and 1 <= found <= MAX_RELEASE else None


def number(value: object) -> float | None:
    """A finite number (NaN and infinities never get this far: see :func:`json_object`)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def text(value: object, limit: int = 4096) -> str | None:
    """A string of at most ``limit`` characters, else None."""
    return value if isinstance(value, str) and len(value) <= limit else None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _finite(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):  # 1e999
        raise ValueError(f"{literal} is not a finite number")
    return value


def json_object(raw: str, limit: int = MAX_JSON) -> dict[str, Any] | None:
    """A JSON object, or None for anything else: not JSON, too long, ``NaN``/``Infinity``
    (Python accepts them by default; arithmetic on them breaks later), not an object."""
    if len(raw) > limit:
        return None
    try:
        data = json.loads(raw, parse_constant=_no_constants, parse_float=_finite)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def printable(value: str) -> str:
    """``value`` without control characters (newlines and tabs stay), nor the invisible
    format and separator characters (U+202E reverses the text after it, U+2028 breaks a
    line) that let a host's string disguise itself."""
    value = _CONTROL.sub("", value)
    if value.isascii():
        return value
    return "".join(c for c in value if unicodedata.category(c) not in ("Cf", "Zl", "Zp"))


def one_line(value: str) -> str:
    """``value`` as one printable line: an error must stay one line whatever it quotes."""
    return " ".join(printable(value).split("\n")).replace("\t", " ")


def _hex_decoded(raw: str) -> str | None:
    """The string a ``hex:`` name stands for (None if the hex is broken)."""
    try:
        return bytes.fromhex(raw[len(HEX_PREFIX) :]).decode("utf-8", errors="replace")
    except ValueError:
        return None


def decode_exact(raw: str) -> str:
    """A name the probe sent hex-encoded, decoded to the exact string (to write it back,
    e.g. ``current``'s old target on undo); other names pass unchanged."""
    if not raw.startswith(HEX_PREFIX):
        return raw
    return _hex_decoded(raw) or ""


def decode_name(raw: str) -> str:
    """A name the probe sent hex-encoded (it holds characters that could forge its output),
    decoded and made printable; other names pass unchanged."""
    if not raw.startswith(HEX_PREFIX):
        return raw
    decoded = _hex_decoded(raw)
    if decoded is None:
        return "?"
    return decoded.encode("unicode_escape").decode("ascii")  # "a\\nb": seen, never obeyed


# A shell function for probes: prints its argument unchanged when it holds only characters
# that cannot break a tagged line, else "hex:" and its bytes in hex.
SHELL_SAFE_NAME = (
    "safe_name() { case \"$1\" in ''|*[!A-Za-z0-9._+@=:,/-]*) "
    f"printf '{HEX_PREFIX}%s' \"$(printf '%s' \"$1\" | od -An -v -tx1 | tr -d ' \\n')\";; "
    "*) printf '%s' \"$1\";; esac; }"
)
