"""The commands turn a library argument error into the usage error of its flag by reading the
error's ``argument``, never its text (issue 15)."""

from __future__ import annotations

import attrs
import pytest

from lssgen.cli.common import UsageError, blame_field
from lssgen_core.errors import LSSArgumentError


def test_blame_field_reads_the_argument_not_the_first_word():
    # The first word of this message is "pass": parsing the text would blame "--pass".
    with pytest.raises(UsageError) as info, blame_field():
        raise LSSArgumentError("min_resolution", "pass min_size or its alias, not both")
    assert info.value.argument == "--min-resolution"
    assert "pass min_size or its alias, not both" in str(info.value)


def test_blame_field_reads_attrs_own_validators():
    @attrs.frozen
    class Config:
        dtype: str = attrs.field(validator=attrs.validators.in_(("fp32", "bf16")))

    with pytest.raises(UsageError) as info, blame_field():
        Config("fp8")
    assert info.value.argument == "--dtype"


def test_an_error_that_names_no_field_passes_through():
    with pytest.raises(ValueError, match=r"^disk full$"), blame_field():
        raise ValueError("disk full")
