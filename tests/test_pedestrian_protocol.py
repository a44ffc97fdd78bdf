import numpy as np
import pytest

from faceopt.data.pedestrian import augment_pedestrian_frame, mannequin, multiplicative_noise, paste_object


def test_mannequin_and_paste():
    img, mask = mannequin(80)
    assert img.shape == (80, 40, 3) and mask.shape == (80, 40) and 0.2 < mask.mean() < 0.7
    frame = np.full((100, 100, 3), 200, np.uint8)
    out = paste_object(frame, img, mask, (90, 50))  # clipped at the right edge
    assert (out[50:100, 90:100] != 200).any() and (out[:, :90] == 200).all()
    with pytest.raises(ValueError, match="outside"):
        paste_object(frame, img, mask, (200, 200))
    with pytest.raises(ValueError, match="at least 20"):
        mannequin(10)


def test_multiplicative_noise_statistics_and_seed():
    frame = np.full((200, 200, 3), 100, np.uint8)
    a = multiplicative_noise(frame, np.random.default_rng(0))
    b = multiplicative_noise(frame, np.random.default_rng(0))
    assert np.array_equal(a, b)
    gain = a[..., 0].astype(np.float64) / 100
    assert abs(gain.mean() - 0.8) < 0.01 and abs(gain.std() - 0.2) < 0.01
    assert (a[..., 0] == a[..., 1]).all()  # one gain per pixel for all channels


def test_augment_combines_both():
    frame = np.full((120, 120, 3), 150, np.uint8)
    out = augment_pedestrian_frame(frame, np.random.default_rng(1), obj=mannequin(60), xy=(10, 10), sd=0.0)
    assert out[40, 25].tolist() != [120, 120, 120] and out[110, 110].tolist() == [120, 120, 120]
