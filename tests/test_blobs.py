"""The blob store contract (runyard.blobs.base), run against every implementation.

Another implementation joins by adding a parameter to the ``blobs`` fixture: the tests only use
the BlobStore interface, except the few marked local-only.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from runyard.blobs import (
    BlobDigestMismatchError,
    BlobError,
    BlobInfo,
    BlobNotFoundError,
    BlobStore,
    BlobTooLargeError,
    InvalidBlobKeyError,
    LocalBlobStore,
    key_of_bytes,
    key_of_file,
    make_key,
    open_blob_store,
    parse_key,
    register_scheme,
)


@pytest.fixture(params=["local", "local-fsync", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "s3":
        # moto's S3 server (session-wide); a fresh bucket per test
        from runyard.blobs.s3 import S3BlobStore

        server = request.getfixturevalue("s3")
        client = server.client()
        bucket = f"t-{os.urandom(6).hex()}"
        client.create_bucket(Bucket=bucket)
        s3_store: BlobStore = S3BlobStore(bucket, "blobs/x", client=client)
        yield s3_store
        return
    store = LocalBlobStore(tmp_path / "blobs", fsync=request.param == "local-fsync")
    yield store
    store.close()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_put_and_get_round_trip_under_the_content_key(blobs: BlobStore) -> None:
    info = blobs.put_bytes(b"hello")
    assert info == BlobInfo(sha(b"hello"), 5)
    assert blobs.stat(info.key) == info
    assert blobs.exists(info.key)
    assert blobs.get_bytes(info.key) == b"hello"
    assert list(blobs.keys()) == [info.key]
    empty = blobs.put_bytes(b"")
    assert empty == BlobInfo(sha(b""), 0) and blobs.get_bytes(empty.key) == b""


def test_puts_are_idempotent(blobs: BlobStore, tmp_path: Path) -> None:
    first = blobs.put_bytes(b"same content")
    again = blobs.put_stream([b"same ", b"content"])
    path = tmp_path / "f.bin"
    path.write_bytes(b"same content")
    from_file = blobs.put_file(path)
    assert first == again == from_file
    assert list(blobs.keys()) == [first.key]


def test_streamed_put_and_read_of_a_large_blob(blobs: BlobStore) -> None:
    chunk = os.urandom(1 << 20)
    digest = hashlib.sha256()
    for _ in range(12):
        digest.update(chunk)

    def chunks() -> Iterator[bytes]:
        for _ in range(12):
            yield chunk

    info = blobs.put_stream(chunks())
    assert info == BlobInfo("sha256:" + digest.hexdigest(), 12 << 20)
    back = hashlib.sha256()
    n = 0
    for part in blobs.iter_chunks(info.key, chunk_size=1 << 18):
        assert len(part) <= 1 << 18
        back.update(part)
        n += len(part)
    assert n == info.size and "sha256:" + back.hexdigest() == info.key


def test_the_expected_key_is_verified(blobs: BlobStore) -> None:
    with pytest.raises(BlobDigestMismatchError) as err:
        blobs.put_bytes(b"actual", expected_key=sha(b"claimed"))
    assert err.value.actual == sha(b"actual")
    assert list(blobs.keys()) == []
    assert blobs.put_bytes(b"actual", expected_key=sha(b"actual")).key == sha(b"actual")


def test_max_size_refuses_and_publishes_nothing(blobs: BlobStore) -> None:
    writer = blobs.writer(max_size=10)
    writer.write(b"12345")
    with pytest.raises(BlobTooLargeError) as err:
        writer.write(b"678901")
    assert err.value.limit == 10
    assert list(blobs.keys()) == []
    assert blobs.put_bytes(b"1234567890", max_size=10).size == 10


def test_a_blob_is_invisible_until_committed(blobs: BlobStore) -> None:
    key = sha(b"part one, part two")
    with blobs.writer() as w:
        w.write(b"part one, ")
        assert blobs.stat(key) is None and not blobs.exists(key) and list(blobs.keys()) == []
        with pytest.raises(BlobNotFoundError):
            blobs.open(key)
        w.write(b"part two")
        assert w.size == 18
        assert w.commit() == BlobInfo(key, 18)
    assert blobs.get_bytes(key) == b"part one, part two"


def test_an_aborted_writer_leaves_nothing(blobs: BlobStore) -> None:
    with pytest.raises(RuntimeError), blobs.writer() as w:
        w.write(b"never published")
        raise RuntimeError("the source failed")
    assert list(blobs.keys()) == []


def test_malformed_keys_are_refused_everywhere(blobs: BlobStore) -> None:
    bad = [
        "sha256:../../etc/passwd",
        "sha256:" + "A" * 64,
        "sha256:" + "0" * 63,
        "md5:" + "0" * 32,
        "0" * 64,
        "",
    ]
    for key in bad:
        for call in (blobs.stat, blobs.exists, blobs.open, blobs.delete):
            with pytest.raises(InvalidBlobKeyError):
                call(key)  # type: ignore[operator]
        with pytest.raises(InvalidBlobKeyError):
            blobs.writer(expected_key=key)
    assert parse_key("sha256:" + "ab" * 32) == ("sha256", "ab" * 32)
    assert make_key("sha256", "AB" * 32) == "sha256:" + "ab" * 32


def test_concurrent_puts_of_the_same_content_store_one_blob(blobs: BlobStore) -> None:
    data = os.urandom(300_000)
    results: list[BlobInfo] = []
    errors: list[BaseException] = []

    def put() -> None:
        try:
            results.append(blobs.put_stream(data[i : i + 4096] for i in range(0, len(data), 4096)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=put) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert {r.key for r in results} == {sha(data)} and len(results) == 8
    assert list(blobs.keys()) == [sha(data)]
    assert blobs.get_bytes(sha(data)) == data


def test_delete(blobs: BlobStore) -> None:
    info = blobs.put_bytes(b"to delete")
    assert blobs.delete(info.key) is True
    assert blobs.delete(info.key) is False
    assert blobs.stat(info.key) is None
    with pytest.raises(BlobNotFoundError):
        blobs.get_bytes(info.key)
    assert isinstance(BlobNotFoundError("x"), FileNotFoundError)


def test_key_helpers(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"abc" * 1000)
    assert key_of_file(path) == (sha(b"abc" * 1000), 3000)
    assert key_of_bytes(b"abc") == sha(b"abc")


# -- local-only ----------------------------------------------------------------------------------


def test_local_layout_and_sendfile_path(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    info = store.put_bytes(b"x")
    hexdigest = info.key.split(":")[1]
    path = store.local_path(info.key)
    assert path == tmp_path / "sha256" / hexdigest[:2] / hexdigest
    assert path is not None and path.read_bytes() == b"x"
    assert store.local_path(sha(b"absent")) is None
    assert list((tmp_path / ".partial").iterdir()) == []


def test_a_writer_killed_mid_write_publishes_nothing(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, signal
        from runyard.blobs import LocalBlobStore
        w = LocalBlobStore({str(tmp_path)!r}).writer()
        w.write(b"half of the content")
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert proc.returncode == -signal.SIGKILL
    store = LocalBlobStore(tmp_path)
    assert list(store.keys()) == []
    assert len(list((tmp_path / ".partial").iterdir())) == 1  # a leftover, never a blob
    os.utime(next((tmp_path / ".partial").iterdir()), (0, 0))
    LocalBlobStore(tmp_path)  # opening removes stale leftovers
    assert list((tmp_path / ".partial").iterdir()) == []


def test_open_blob_store_locations(tmp_path: Path) -> None:
    assert isinstance(open_blob_store(tmp_path / "a"), LocalBlobStore)
    by_url = open_blob_store(f"file://{tmp_path}/b")
    assert isinstance(by_url, LocalBlobStore) and by_url.root == tmp_path / "b"
    assert isinstance(open_blob_store(str(tmp_path / "c")), LocalBlobStore)
    with pytest.raises(BlobError, match="no blob store for s3x://"):
        open_blob_store("s3x://bucket/prefix")
    seen: list[str] = []

    def factory(url: str) -> BlobStore:
        seen.append(url)
        return LocalBlobStore(tmp_path / "d")

    register_scheme("memtest", factory)
    assert isinstance(open_blob_store("memtest://x"), LocalBlobStore) and seen == ["memtest://x"]


def test_a_resumable_upload_continues_where_it_stopped(blobs: BlobStore) -> None:
    part = os.urandom(5 << 20)  # S3's smallest part
    tail = b"the end"
    key = sha(part + tail)
    first = blobs.resumable("up-1", expected_key=key)
    assert first.offset == 0
    assert first.append([part[:1000], part[1000:]], 0) == len(part)
    with pytest.raises(BlobError, match="resume there"):
        first.append([tail], 0)
    # another object (another process) resumes the same upload at the stored offset
    again = blobs.resumable("up-1", expected_key=key)
    assert again.offset == len(part) and not blobs.exists(key)
    again.append([tail], again.offset)
    md5 = hashlib.md5()
    info = again.complete([md5])
    assert info == BlobInfo(key, len(part) + len(tail))
    assert md5.digest() == hashlib.md5(part + tail).digest()
    assert blobs.get_bytes(key) == part + tail
    assert blobs.resumable("up-1", expected_key=key).offset == 0  # the staged parts are gone


def test_a_resumable_upload_of_other_content_publishes_nothing(blobs: BlobStore) -> None:
    key = sha(b"expected")
    upload = blobs.resumable("up-2", expected_key=key)
    upload.append([b"something else"], 0)
    with pytest.raises(BlobDigestMismatchError):
        upload.complete()
    assert not blobs.exists(key) and list(blobs.keys()) == []


def test_a_large_writer_blob_goes_through_in_parts(blobs: BlobStore) -> None:
    data = os.urandom((8 << 20) * 2 + 12345)  # past S3's inline size: a multipart upload
    info = blobs.put_stream(
        [data[i : i + (1 << 20)] for i in range(0, len(data), 1 << 20)], expected_key=sha(data)
    )
    assert blobs.stat(info.key) == BlobInfo(sha(data), len(data))
    assert blobs.get_bytes(info.key) == data
