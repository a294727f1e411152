"""Schemathesis hooks: the rules of the CP-IS JSON API that JSON Schema cannot say, stated once
here so that the generated *valid* requests are valid (the description names them in prose).

- Format `nhs-number`: ten digits with a modulus-11 check digit, not all zeros, optionally grouped
  with spaces or hyphens.
- A plan's `end_date` and `delete_date` are not before its `start_date`.
- A case without NHS number is due on its `start_date`, at most 365 days after today.
- An LA submits only for itself: positive plan records carry the LA credential's own ODS code
  (`CPIS_OPENAPI_LA_ODS`), so that they create and update plans instead of being refused (403).

Loaded by tests/openapi/fuzz.py through SCHEMATHESIS_HOOKS.
"""

import datetime
import os

import schemathesis
from hypothesis import strategies as st


def check_digit(first_nine):
    """The NHS number's modulus-11 check digit, or None when it works out as 10."""
    value = 11 - sum(d * w for d, w in zip(first_nine, range(10, 1, -1))) % 11
    return {11: 0, 10: None}.get(value, value)


def nhs_number(first_nine, style):
    check = check_digit(first_nine)
    if check is None or (check == 0 and not any(first_nine)):
        return None
    digits = "".join(map(str, first_nine)) + str(check)
    if style == "spaces":
        return f"{digits[:3]} {digits[3:6]} {digits[6:]}"
    if style == "hyphens":
        return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
    return digits


NHS_NUMBERS = st.builds(
    nhs_number,
    st.lists(st.integers(0, 9), min_size=9, max_size=9),
    st.sampled_from(["plain", "plain", "spaces", "hyphens"]),
).filter(lambda n: n is not None)

schemathesis.openapi.format("nhs-number", NHS_NUMBERS)

PLAN_OPERATIONS = {("POST", "/api/v1/plans")}


@schemathesis.hook
def map_case(context, case):
    operation = (case.operation.method.upper(), case.operation.path)
    meta = case.meta
    positive = meta is not None and meta.generation.mode.is_positive
    if operation in PLAN_OPERATIONS and positive and isinstance(case.body, dict):
        record = case.body
        start = record.get("start_date")
        horizon = (datetime.date.today() + datetime.timedelta(days=365)).isoformat()
        if record.get("nhs_number") is None and isinstance(start, str) and start > horizon:
            start = record["start_date"] = datetime.date.today().isoformat()
        if isinstance(start, str):
            for field in ("end_date", "delete_date"):
                value = record.get(field)
                if isinstance(value, str) and value < start:
                    record[field] = start
        la = record.get("local_authority")
        if isinstance(la, dict) and "ods_code" in la:
            la["ods_code"] = os.environ["CPIS_OPENAPI_LA_ODS"]
    return case
