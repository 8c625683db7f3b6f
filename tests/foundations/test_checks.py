import pytest

from foundations.checks import choose, positive_int, unit_interval


def test_checks_pass_good_values_and_name_bad_ones():
    assert positive_int("n", 3) == 3 and unit_interval("g", 0.0) == 0.0 and choose("preset", "a", {"a": 1}) == 1
    for bad in (0, -2, 2.0, True, "3"):
        with pytest.raises(ValueError, match=r"^n must be an integer >= 1, got "):
            positive_int("n", bad)
    with pytest.raises(ValueError, match=r"^g must be in \[0, 1\], got 1.5$"):
        unit_interval("g", 1.5)
    with pytest.raises(ValueError, match=r"^unknown preset 'b'; choose one of \['a', 'c'\]$"):
        choose("preset", "b", {"c": 2, "a": 1})
