"""Sample raw LendingClub CSV text for the training.data tests (a helpers module, not a test module)."""
from __future__ import annotations

from pathlib import Path

import pytest

from training.data import load_loans
from training.errors import DataError

#: ../shared/data/lendingclub beside the repository: the real files (the realdata tests skip where absent).
REAL = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "lendingclub"
REAL_FILES = sorted(REAL.glob("**/*.csv.gz")) if REAL.is_dir() else []
COLS = ["loan_amnt", "term", "int_rate", "emp_length", "issue_d", "earliest_cr_line", "revol_util",
        "annual_inc", "home_ownership"]
HEADER = "loan_amnt,term,int_rate,grade,emp_length,issue_d,earliest_cr_line,revol_util,annual_inc,home_ownership"
GOOD_ROWS = [
    '10000, 36 months, 11.55%,B,10+ years,Dec-2015,Aug-2000,36.2%,55000,RENT',
    '5000, 60 months,  7.49%,A,< 1 year,Jan-2016,May-1998,5%,72000.5,MORTGAGE',
    '8000, 36 months, 22.90%,E,n/a,Feb-2016,Feb-2002,100.1%,30000,OWN',
]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def csv_text(rows: list[str], header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def load_error(data, columns=COLS, **kw) -> str:
    """The message of the DataError that loading ``data`` raises (checked to be one line)."""
    with pytest.raises(DataError) as info:
        load_loans(data, columns, **kw)
    message = str(info.value)
    assert "\n" not in message
    return message


def damaged_gzip(data: bytes, damage: str) -> bytes:
    """``data`` cut in half, or with bytes in the middle of the deflate stream, or the trailer's CRC, overwritten."""
    if damage == "truncated":
        return data[: len(data) // 2]
    damaged = bytearray(data)
    at = len(data) // 2 if damage == "middle" else len(data) - 8
    damaged[at:at + 4] = bytes(b ^ 0xFF for b in damaged[at:at + 4])
    return bytes(damaged)
