"""Sizes and ages as the CLI, ``status`` and the page spell them."""
from __future__ import annotations

import pytest

from reconciler.units import age_text, size_text


@pytest.mark.parametrize("size, text", [(None, "?"), (0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"),
                                        (3 * 2**20, "3.0 MiB"), (5 * 2**50, "5120.0 TiB")])
def test_sizes_read_in_binary_units(size, text):
    assert size_text(size) == text


@pytest.mark.parametrize("seconds, text", [(-3, "0 s ago"), (119.4, "119 s ago"), (120, "2 min ago"),
                                           (7200, "2 h ago"), (172800, "2 d ago")])
def test_ages_read_in_the_largest_whole_unit(seconds, text):
    assert age_text(seconds) == text
