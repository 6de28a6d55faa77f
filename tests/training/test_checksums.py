import hashlib

from training.checksums import BLOCK_BYTES, sha256_file


def test_sha256_matches_hashlib_across_block_boundaries(tmp_path):
    data = bytes(range(256)) * (BLOCK_BYTES // 256 * 2 + 3)   # more than two blocks, not a whole number of them
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert sha256_file(str(path)) == hashlib.sha256(data).hexdigest()


def test_sha256_of_an_empty_file(tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert sha256_file(path) == hashlib.sha256(b"").hexdigest()
