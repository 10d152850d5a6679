"""FileSource: names are kept inside the root; generated files come first."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offhook.tftp.files import FileMissing, FileRefused, FileSource, check_name


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "sub").mkdir(parents=True)
    (r / "a.bin").write_bytes(b"A")
    (r / "sub" / "b.bin").write_bytes(b"B")
    (tmp_path / "secret").write_bytes(b"S")
    os.symlink(tmp_path / "secret", r / "escape")
    os.symlink(r / "a.bin", r / "inside")
    os.symlink(tmp_path, r / "updir")
    return r


@pytest.mark.parametrize(
    "name",
    [
        "..",
        "../secret",
        "a/../../x",
        "sub/../a.bin",
        "/etc/passwd",
        "a.bin\x00.xml",
        "..\\secret",
        "sub\\b.bin",
        "C:secret",
        "./a.bin",
        "sub//b.bin",
        "",
        "~root",
        "x" * 300,
        "line\nbreak",
    ],
)
def test_refused_names(root: Path, name: str) -> None:
    with pytest.raises(FileRefused):
        FileSource(root).read(name)


@pytest.mark.parametrize("name", ["escape", "updir/secret"])
def test_symlink_out_of_root_refused(root: Path, name: str) -> None:
    with pytest.raises(FileRefused):
        FileSource(root).read(name)


def test_reads_inside_root(root: Path) -> None:
    src = FileSource(root)
    assert src.read("a.bin") == b"A"
    assert src.read("sub/b.bin") == b"B"
    assert src.read("inside") == b"A"  # symlink staying inside is fine


@pytest.mark.parametrize("name", ["nothing", "sub", "sub/nothing"])
def test_missing(root: Path, name: str) -> None:
    with pytest.raises(FileMissing):
        FileSource(root).read(name)


def test_generated_checked_first(root: Path) -> None:
    seen: list[str] = []

    def gen(name: str, version: int) -> bytes | None:
        seen.append(name)
        if name == "v.xml":
            return f"IPv{version}".encode()
        return b"GEN" if name == "a.bin" or name == "SEP1.cnf.xml" else None

    src = FileSource(root, gen)
    assert src.read("a.bin") == b"GEN"
    assert src.read("SEP1.cnf.xml") == b"GEN"
    assert src.read("sub/b.bin") == b"B"
    with pytest.raises(FileRefused):
        src.read("../secret")
    assert "../secret" not in seen  # unsafe names never reach the generator
    # The generator learns the IP version the client asked over (4 unless told).
    assert (src.read("v.xml"), src.read("v.xml", 6)) == (b"IPv4", b"IPv6")


def test_no_root_only_generated() -> None:
    src = FileSource(None, lambda n, v: b"x" if n == "x" else None)
    assert src.read("x") == b"x"
    with pytest.raises(FileMissing):
        src.read("y")


def test_max_size(root: Path) -> None:
    (root / "big").write_bytes(b"x" * 100)
    with pytest.raises(FileMissing):
        FileSource(root, max_size=10).read("big")


def test_check_name_normalises() -> None:
    assert check_name("sub/b.bin") == "sub/b.bin"


_PIECES = st.sampled_from(
    ["a", "b.bin", "sub", "..", ".", "/", "\\", "\x00", "escape", "updir", ":"]
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=300)
@given(st.lists(_PIECES, max_size=8))
def test_any_name_stays_inside_root(root: Path, pieces: list[str]) -> None:
    name = "".join(pieces)
    try:
        data = FileSource(root).read(name)
    except (FileRefused, FileMissing):
        return
    assert data in (b"A", b"B")  # only files inside the root are ever read


def test_cache_shares_one_copy_and_sees_changes(root: Path) -> None:
    (root / "fw.bin").write_bytes(b"v1" * 10)
    src = FileSource(root, cache_bytes=50)
    first = src.read("fw.bin")
    assert src.read("fw.bin") is first  # one shared copy
    assert src.cached_bytes == 20
    (root / "fw.bin").write_bytes(b"v2" * 11)  # new size/mtime: a new version
    assert src.read("fw.bin") == b"v2" * 11
    (root / "big.bin").write_bytes(b"x" * 51)
    src.read("big.bin")  # larger than the cache: not kept
    assert src.cached_bytes <= 50
    src.read("a.bin")
    src.read("sub/b.bin")
    assert src.cached_bytes <= 50
