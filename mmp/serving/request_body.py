"""A request body read as JSON within limits, so that no body costs more than its size: how deep it
nests is checked before parsing (the JSON parser recurses once per level) and how long an integer
literal may be while parsing (Python's int parsing is quadratic in the digits)."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# Rows are flat objects inside {"samples": [...]}, three levels; extra fields may nest a little.
MAX_DEPTH = 32
# A feature holds at most float32's 39 digits; longer literals are refused before int() parses them.
MAX_INT_DIGITS = 1000

_LONG_DIGITS = re.compile(rb"[0-9]{%d}" % (MAX_INT_DIGITS + 1))
# orjson reads an integer past 64 bits as a float; the json module keeps it exact, for the range check.
# A body with an integer literal of 20 digits goes to the json module: a run of 20 digits not after a
# "." or an exponent (whose digits orjson reads exactly as the json module does: a float of 17
# significant digits and three leading zeros is such a run), found by bytes.translate + `in`, as a
# regex costs 10x. A run inside a string also counts; that only costs the slower parser.
_DIGIT_MARKS = bytes(ord("0") if chr(b).isdigit() and b < 128 else ord(".") if chr(b) in ".eE" else
                     ord("-") if chr(b) in "+-" else ord("x") for b in range(256))
_WIDE_INTS = (b"x" + b"0" * 20, b"x-" + b"0" * 20)
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_CHUNK = 1 << 20


class BodyError(ValueError):
    """A body that is not JSON within the limits; `kind` is the error code clients see."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


def parse(body: bytes) -> Any:
    """The JSON value of `body`; raises BodyError when it is not JSON, nests too deep or holds too long a number."""
    body = _as_utf8(body)
    opened = body.count(b"[") + body.count(b"{")
    if opened > MAX_DEPTH and nesting_depth(body, MAX_DEPTH) > MAX_DEPTH:  # a single record skips the scan
        raise BodyError("too_deep", f"the JSON nests deeper than {MAX_DEPTH} levels; a record is a flat "
                                    "object of column values")
    marks = b"x" + body.translate(_DIGIT_MARKS)
    if _WIDE_INTS[0] not in marks and _WIDE_INTS[1] not in marks:
        try:
            return orjson.loads(body)  # ~15x the json module on a batch of records
        except orjson.JSONDecodeError:
            pass  # the json module says what is wrong in its own words, and reads NaN and Infinity as before
    # Checking each integer in Python triples the parse of an integer-heavy batch: only a body that
    # holds a long run of digits (in a number or in a string) pays for it.
    bounded = _bounded_int if _LONG_DIGITS.search(body) else None
    try:
        return json.loads(body, parse_int=bounded)
    except BodyError:
        raise
    except RecursionError as exc:  # a stack already deep when parsing began; the scan above keeps this rare
        raise BodyError("too_deep", "the JSON nests too deep to parse") from exc
    except ValueError as exc:  # UnicodeDecodeError is one
        raise BodyError("invalid_json", f"the body is not valid JSON: {exc}") from exc


def nesting_depth(body: bytes, limit: int) -> int:
    """How deep the arrays and objects of `body` nest, brackets inside strings not counted; stops
    counting once past `limit`. Linear in the body's size, in C and numpy: no Python loop per byte."""
    import numpy as np

    # Escaped backslashes, then escaped quotes, go first (left to right, as JSON reads them): every
    # quote left opens or closes a string. Then only quotes and brackets are kept.
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    marks = body.translate(None, _NOT_STRUCTURE)
    codes = np.frombuffer(marks, dtype=np.uint8)
    step = np.zeros(256, dtype=np.int64)
    step[list(b"[{")] = 1
    step[list(b"]}")] = -1
    deepest = level = quotes = 0
    for start in range(0, len(codes), _CHUNK):  # chunks keep memory small for a body of brackets
        chunk = codes[start:start + _CHUNK]
        is_quote = chunk == ord('"')
        outside = (np.cumsum(is_quote) + quotes) % 2 == 0
        levels = np.cumsum(step[chunk] * outside) + level
        deepest, level, quotes = max(deepest, int(levels.max())), int(levels[-1]), quotes + int(is_quote.sum())
        if deepest > limit:
            break
    return deepest


def _as_utf8(body: bytes) -> bytes:
    # json.loads also takes UTF-16 and UTF-32, whose bytes can look like brackets and quotes: the
    # depth scan reads UTF-8, where every byte below 0x80 is the ASCII character it looks like.
    encoding = json.detect_encoding(body)
    if encoding == "utf-8":
        return body
    try:
        return body.decode(encoding, "surrogatepass").encode("utf-8", "surrogatepass")
    except UnicodeError as exc:
        raise BodyError("invalid_json", f"the body is not valid {encoding}: {exc}") from exc


def _bounded_int(text: str) -> int:
    digits = len(text) - text.startswith("-")
    if digits > MAX_INT_DIGITS:
        raise BodyError("number_too_long", f"a number with {digits} digits; at most {MAX_INT_DIGITS} are read "
                                           "(a feature value must be within ±3.4e38)")
    return int(text)
