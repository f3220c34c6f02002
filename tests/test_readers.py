import numpy as np
import pytest

from genlab.data.readers import normalise_hoda, read_cdb, read_cifar_batch, read_idx, read_idx_pair
from genlab.errors import DataError
from conftest import write_cdb, write_cifar_batch, write_idx


def test_idx_round_trip_gzip_and_plain(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 7, dtype=np.uint8)
    got_images, got_labels = read_idx_pair(write_idx(tmp_path / "i.gz", images), write_idx(tmp_path / "l", labels, False))
    assert got_images.shape == (7, 1, 28, 28)
    np.testing.assert_array_equal(got_images[:, 0], images)
    np.testing.assert_array_equal(got_labels, labels)


def test_idx_truncated_file_names_the_file(tmp_path):
    path = write_idx(tmp_path / "t.idx", np.zeros((5, 4, 4), np.uint8), compress=False)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="t.idx.*truncated"):
        read_idx(path)


def test_idx_wrong_magic(tmp_path):
    path = tmp_path / "bad.idx"
    path.write_bytes(b"\x00\x00\x0d\x03" + bytes(20))
    with pytest.raises(DataError, match="not an IDX uint8 file"):
        read_idx(path)


def test_cifar_batch_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (6, 3, 32, 32), dtype=np.uint8)
    labels = np.array([3, 8, 8, 0, 6, 6])
    got_images, got_labels = read_cifar_batch(write_cifar_batch(tmp_path / "b", images, labels))
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_cifar_batch_not_a_pickle(tmp_path):
    (tmp_path / "b").write_bytes(b"this is not a pickle")
    with pytest.raises(DataError, match="not a CIFAR-10 python batch"):
        read_cifar_batch(tmp_path / "b")


def _random_images(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.random((rng.integers(4, 40), rng.integers(3, 30))) < 0.4 for _ in range(n)]


def test_cdb_round_trip_is_exact(tmp_path):
    images = _random_images(25)
    images[0][:] = False  # an all-background image
    images[1][:] = True  # rows that start with ink (a zero-length background run)
    labels = [i % 10 for i in range(25)]
    got, got_labels, header = read_cdb(write_cdb(tmp_path / "x.cdb", images, labels))
    assert header.record_count == 25 and header.binary
    assert got_labels.tolist() == labels
    for a, b in zip(images, got):
        np.testing.assert_array_equal(a, b)


def test_cdb_record_count_mismatch(tmp_path):
    images, labels = _random_images(5), [1, 2, 3, 4, 5]
    path = write_cdb(tmp_path / "x.cdb", images, labels)
    data = bytearray(path.read_bytes())
    data[6:10] = (6).to_bytes(4, "little")  # header claims 6 records; class counts still sum to 5
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="valid Hoda .cdb header"):
        read_cdb(path)


def test_cdb_truncated(tmp_path):
    path = write_cdb(tmp_path / "x.cdb", _random_images(5), [1, 2, 3, 4, 5])
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DataError, match="x.cdb.*(cut short|truncated|damaged|cover)"):
        read_cdb(path)


def test_hoda_normalisation_pads_to_square_keeping_aspect():
    wide = np.ones((10, 20), dtype=bool)  # ink everywhere, twice as wide as tall
    tall = np.ones((20, 10), dtype=bool)
    out = normalise_hoda([wide, tall])
    assert out.shape == (2, 1, 28, 28) and out.dtype == np.uint8
    assert set(np.unique(out)) <= {0, 255}
    ink_rows = np.flatnonzero(out[0, 0].any(1))
    ink_cols = np.flatnonzero(out[1, 0].any(0))
    # padded to 20x20 then scaled by 1.4: the ink band is about 14 px, centred
    assert 12 <= len(ink_rows) <= 16 and abs(ink_rows.mean() - 13.5) < 1
    assert 12 <= len(ink_cols) <= 16 and abs(ink_cols.mean() - 13.5) < 1
    assert out[0, 0].any(0).all()  # the wide image still spans the full width
