"""The fast paths of the serving request (orjson parsing, column-wise validation) answer exactly as
the json module and the row-by-row check do: same values, same errors, same fields."""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest

from mmp.serving import request_body
from mmp.serving.request_schema import RowSchema

BODIES = [
    '{"a": 1.5, "b": -0.0, "c": 1e308, "d": 5e-324, "e": null, "f": true, "g": "x\\u00e9\\"y\\\\"}',
    '{"i": 9223372036854775807, "j": -9223372036854775808, "k": 18446744073709551615}',
    '{"wide": 123456789012345678901234567890, "negative": -98765432109876543210}',
    '{"float_digits": 0.000000000000000000001, "text": "00000000000000000000000"}',
    '[0.00012345678901234567, -0.000999999999999999999999, 1e-000000000000000000005, 12345678901234567890123]',
    '[-12345678901234567890123, 0, 1.5E+00000000000000000002, {"k": 99999999999999999999}]',
    '{"nan": NaN, "inf": Infinity, "ninf": -Infinity}',
    r'{"samples": [{"x": 1, "y": "\u00fc\u4e2d\ud83d\ude00"}, {"x": 2.25, "y": null}]}',
    '{"text": "ü中😀"}',
    '[1, [2, [3, [4]]], {"a": {"b": {"c": []}}}]',
]


@pytest.mark.parametrize("text", BODIES)
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_a_body_parses_to_what_the_json_module_reads(text, encoding):
    expected = json.loads(text)
    got = request_body.parse(text.encode(encoding))
    assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert [type(v) for v in _leaves(got)] == [type(v) for v in _leaves(expected)]  # wide integers stay int


def test_bad_bodies_keep_their_error_kinds():
    for body, kind in ((b"nope", "invalid_json"), (b'{"a": 1,', "invalid_json"), (b'{"a": "\xff"}', "invalid_json"),
                       (b"[" * 100, "too_deep"), (b'{"a": ' + b"7" * 1500 + b"}", "number_too_long")):
        with pytest.raises(request_body.BodyError) as error:
            request_body.parse(body)
        assert error.value.kind == kind, body[:30]


FEATURES = ["age", "income", "plan", "region"]
NUMERIC = ["age", "income"]
BAD_VALUES = [True, False, "12", [1], {"v": 1}, float("nan"), float("inf"), -float("inf"), 1e39, -1e39, 10 ** 40,
              10 ** 400, 3.5, 7]


def _row(rng: random.Random) -> dict:
    return {"age": rng.choice([rng.randint(18, 90), rng.random() * 90, None]), "income": rng.random() * 1e5,
            "plan": rng.choice(["basic", "pro", None]), "region": rng.choice(["north", "south"]), "extra": [1]}


def test_column_wise_validation_finds_exactly_what_the_row_by_row_check_finds():
    schema, rng = RowSchema(FEATURES, NUMERIC), random.Random(7)
    rows = [_row(rng) for _ in range(300)]
    assert schema.check_rows(rows) == [] == _row_by_row(schema, rows)
    for trial in range(200):
        broken = [dict(r) for r in rows]
        for _ in range(rng.randint(1, 3)):
            row, column = rng.randrange(len(broken)), rng.choice(FEATURES)
            if rng.random() < 0.15:
                broken[row].pop(column)
            else:
                broken[row][column] = rng.choice(BAD_VALUES)
        if rng.random() < 0.05:
            broken[rng.randrange(len(broken))] = rng.choice([42, "row", None, [1, 2]])
        assert schema.check_rows(broken) == _row_by_row(schema, broken), trial


def _row_by_row(schema: RowSchema, rows: list) -> list:
    return [e for i, row in enumerate(rows) for e in schema.check(row, f"samples[{i}]")]


def _leaves(node):
    if isinstance(node, dict):
        for key in sorted(node):
            yield from _leaves(node[key])
    elif isinstance(node, list):
        for item in node:
            yield from _leaves(item)
    else:
        yield node


def test_column_wise_checks_of_columns_find_exactly_what_the_value_by_value_check_finds():
    schema, rng = RowSchema(FEATURES, NUMERIC), random.Random(11)
    rows = [_row(rng) for _ in range(200)]
    columns = {c: [r[c] for r in rows] for c in FEATURES}
    block, errors = schema.check_columns(columns, lambda c, i: f"columns.{c}[{i}]")
    from_rows, _ = schema.rows_as_columns(rows)
    assert errors == [] and list(block.data) == FEATURES and len(block) == 200
    for c in FEATURES:  # the same values, numbers as float64 (null: NaN), text as it came
        assert pd.Series(block.data[c]).equals(pd.Series(from_rows.data[c])), c
    # the frame the model reads is the one the rows made before (numbers as float64, as the model reads them)
    before = pd.DataFrame.from_records(rows, columns=FEATURES).astype({c: "float64" for c in NUMERIC})
    pd.testing.assert_frame_equal(block.frame(), before)
    for trial in range(200):
        broken = {c: list(v) for c, v in columns.items()}
        for _ in range(rng.randint(1, 3)):
            broken[rng.choice(FEATURES)][rng.randrange(200)] = rng.choice(BAD_VALUES)
        expected = [f"columns.{c}[{i}]: {schema.problem(c, v)}" for c in FEATURES for i, v in enumerate(broken[c])
                    if schema.problem(c, v)]
        block, errors = schema.check_columns(broken, lambda c, i: f"columns.{c}[{i}]")
        assert [f"{e.field}: {e.message}" for e in errors] == expected, trial
        assert (block is None) == bool(expected), trial
