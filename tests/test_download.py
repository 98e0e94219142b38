"""The one download routine: file:// stands in for the official servers (real transfers, no network)."""

import hashlib

import pytest

from cifarlab.download import DownloadFailed, download_file
from cifarlab.errors import CifarlabError


@pytest.fixture
def served(tmp_path):
    path = tmp_path / "mirror" / "archive.bin"
    path.parent.mkdir()
    path.write_bytes(bytes(range(256)) * 5000)
    return path


def test_a_download_arrives_whole_with_its_md5_and_size(served, tmp_path):
    dest = tmp_path / "got" / "archive.bin"
    received = download_file(served.as_uri(), dest, "archive.bin")
    assert dest.read_bytes() == served.read_bytes()
    assert received.size == served.stat().st_size
    assert received.md5 == hashlib.md5(served.read_bytes()).hexdigest()


def test_a_file_the_check_refuses_is_not_kept(served, tmp_path):
    def refuse(received):
        raise CifarlabError(f"md5 {received.md5} is not the official one")

    dest = tmp_path / "got" / "archive.bin"
    with pytest.raises(CifarlabError, match="is not the official one"):
        download_file(served.as_uri(), dest, "archive.bin", verify=refuse)
    assert not dest.exists() and not dest.parent.exists()


def test_an_unreachable_server_is_one_download_failure_naming_the_url(tmp_path):
    with pytest.raises(DownloadFailed, match=r"downloading http://127\.0\.0\.1:9/x\.bin failed"):
        download_file("http://127.0.0.1:9/x.bin", tmp_path / "x.bin", "x.bin")
    assert not (tmp_path / "x.bin").exists()
