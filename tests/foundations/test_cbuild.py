"""Building C kernels: cache, defines, failure falls back with a warning, the off switch."""

import shutil

import pytest

from foundations import cbuild

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler on this machine")

SOURCE = """
#ifndef SCALE
#define SCALE 1
#endif
long scaled_sum(const long *x, long n) {
    long s = 0;
    for (long i = 0; i < n; i++) s += x[i];
    return SCALE * s;
}
"""


@pytest.fixture
def source(tmp_path, monkeypatch):
    monkeypatch.setenv("DRLS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(cbuild.DISABLE_ENV, raising=False)
    path = tmp_path / "k.c"
    path.write_text(SOURCE)
    return path


def _call(lib, values):
    import ctypes

    array = (ctypes.c_long * len(values))(*values)
    lib.scaled_sum.restype = ctypes.c_long
    return lib.scaled_sum(array, len(values))


def test_builds_loads_and_applies_defines(source):
    assert _call(cbuild.load_c_library(source), [1, 2, 3]) == 6
    assert _call(cbuild.load_c_library(source, {"SCALE": "10"}), [1, 2, 3]) == 60
    assert len(list(cbuild.cache_dir().glob("k-*.so"))) == 2  # one library per set of defines


def test_second_load_uses_the_cache_without_compiling(source, monkeypatch):
    cbuild.load_c_library(source)

    def no_compiler(*args, **kwargs):
        raise AssertionError("compiled again")

    monkeypatch.setattr(cbuild, "_build", no_compiler)
    assert _call(cbuild.load_c_library(source), [4, 5]) == 9


def test_changed_source_is_rebuilt(source):
    cbuild.load_c_library(source)
    source.write_text(SOURCE.replace("return SCALE * s;", "return SCALE * s + 1;"))
    assert _call(cbuild.load_c_library(source), [1, 2, 3]) == 7


def test_compile_error_warns_with_the_compilers_message_and_returns_none(source):
    source.write_text("this is not C;")
    with pytest.warns(RuntimeWarning, match="using the torch implementation.*error"):
        assert cbuild.load_c_library(source) is None
    assert not list(cbuild.cache_dir().glob("*.so"))  # no half-written library left behind


def test_off_switch(source, monkeypatch):
    monkeypatch.setenv(cbuild.DISABLE_ENV, "1")
    assert not cbuild.c_kernels_enabled()
    assert cbuild.load_c_library(source) is None
    monkeypatch.setenv(cbuild.DISABLE_ENV, "0")
    assert cbuild.c_kernels_enabled()


def test_missing_compiler_warns_and_returns_none(source, monkeypatch):
    monkeypatch.setenv("CC", "no-such-compiler-xyz")
    cbuild._compiler.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="no C compiler"):
            assert cbuild.load_c_library(source) is None
    finally:
        monkeypatch.delenv("CC")
        cbuild._compiler.cache_clear()
