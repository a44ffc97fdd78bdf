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


def test_pedestrian_scene_reads_selected_frames_with_boxes(tmp_path):
    import cv2

    from faceopt.data.pedestrian import pedestrian_scene

    path = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for k in range(6):
        writer.write(np.full((48, 64, 3), 40 * k, np.uint8))
    writer.release()
    boxes = {2: np.array([[1, 2, 10, 20]], np.float32)}
    frames, gt = pedestrian_scene(path, boxes, [4, 2], augment=False)
    assert [int(round(f.mean() / 40)) for f in frames] == [2, 4]      # sorted frame order
    assert gt[0].tolist() == [[1, 2, 10, 20]] and gt[1].shape == (0, 4)
    noisy, _ = pedestrian_scene(path, boxes, [2, 4], object_height=20, xy=(5, 5), seed=1)
    again, _ = pedestrian_scene(path, boxes, [2, 4], object_height=20, xy=(5, 5), seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(noisy, again))  # seeded
    assert not np.array_equal(noisy[0], frames[0])
    with pytest.raises(ValueError, match="no frame 9"):
        pedestrian_scene(path, boxes, [9])
