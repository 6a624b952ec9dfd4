"""records.py (numpy dtypes, IntEnums) must mirror records.pxd byte for byte: the journal depends on it."""

from core_cython import records
from core_cython.engine import enum_values, record_layout


def offsets(dtype) -> dict[str, int]:
    return {name: dtype.fields[name][1] for name in dtype.names}


def test_command_dtype_matches_c_struct() -> None:
    layout = record_layout()
    assert layout["command_size"] == records.COMMAND_SIZE == 96
    assert offsets(records.COMMAND_DTYPE) == layout["command"]


def test_event_dtype_matches_c_struct() -> None:
    layout = record_layout()
    assert layout["event_size"] == records.EVENT_SIZE == 112
    assert offsets(records.EVENT_DTYPE) == layout["event"]


def test_enums_match_c_enums() -> None:
    for enum_name, members in enum_values().items():
        python_enum = getattr(records, enum_name)
        assert {m.name: int(m) for m in python_enum} == members, enum_name


def test_builtin_account_ids_match() -> None:
    assert (records.ACCOUNT_EXTERNAL, records.ACCOUNT_ADJUSTMENTS, records.ACCOUNT_FEES) == (1, 2, 3)
    assert records.FIRST_CUSTOMER_ACCOUNT == 16
