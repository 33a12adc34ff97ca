from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runcast.errors import InvalidInputError
from runcast.track._args import check_init, file_id, short


def test_file_id_tells_a_replaced_file_from_the_same_one(tmp_path: Path) -> None:
    f = tmp_path / "store.db"
    f.write_bytes(b"a")
    before = file_id(f)
    assert before is not None and file_id(f) == before  # the same file, asked twice
    f.unlink()
    assert file_id(f) is None  # deleted
    keep = tmp_path / "keep"
    keep.write_bytes(b"b")  # holds the old inode number away from the new file
    f.write_bytes(b"a")
    assert file_id(f) != before  # a new file under the same name


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("p", None, None, None, 0.5), None),
        (("", "n", {}, "abc", 2), None),
        ((None, None, None, None, 1.0), "project=None"),
        (("p", b"n", None, None, 1.0), "name must be a string"),
        (("p", None, [("lr", 1)], None, 1.0), "config must be a dict"),
        (("p", None, None, 3, 1.0), "resume must be a string"),
        (("p", None, None, None, True), "flush_every"),
        (("p", None, None, None, float("inf")), "flush_every"),
        (("p", None, None, None, -1), "flush_every"),
    ],
)
def test_check_init_passes_good_arguments_and_names_bad_ones(
    args: tuple[Any, ...], match: str | None
) -> None:
    if match is None:
        check_init(*args)  # no error
        return
    with pytest.raises(InvalidInputError, match=match):
        check_init(*args)


def test_short_cuts_long_values_for_messages() -> None:
    assert short("ab") == "'ab'"
    assert len(short("x" * 500)) == 60
