"""Audio and numeric-sequence columns: decoding, log-mel values, padding masks, bad files, end to end."""

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from mmfuse import Predictor
from mmfuse.modalities.audio.features import load_audio, log_mel, mel_filterbank
from mmfuse.data.detect import detect_columns
from mmfuse.core.processor import EMPTY, TRUNCATED, UNREADABLE, Processor
from mmfuse.modalities.audio.processor import AudioProcessor
from mmfuse.modalities.sequence.processor import SequenceProcessor


def tone(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(wave: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()])


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg"])
@pytest.mark.parametrize("rate", [8000, 44100])
def test_formats_and_rates_resample_to_the_target(tmp_path, suffix, rate):
    path = tmp_path / f"a{suffix}"
    sf.write(path, tone(440, rate, 0.5), rate)
    wave = load_audio(path, 16000)[0]
    assert wave.dtype == np.float32 and abs(len(wave) - 8000) <= 2
    assert abs(peak_hz(wave, 16000) - 440) < 5


def test_stereo_mixes_down_silence_and_clipping(tmp_path):
    left, right = tone(440, 16000, 0.25), tone(880, 16000, 0.25)
    sf.write(tmp_path / "s.wav", np.stack([left, right], axis=1), 16000)
    np.testing.assert_allclose(load_audio(tmp_path / "s.wav", 16000)[0], (left + right) / 2, atol=1e-4)
    sf.write(tmp_path / "quiet.wav", np.zeros(4000, dtype=np.float32), 16000)
    assert not load_audio(tmp_path / "quiet.wav", 16000)[0].any()
    sf.write(tmp_path / "loud.wav", tone(440, 16000, 0.25, amplitude=3.0), 16000, subtype="PCM_16")
    loud = load_audio(tmp_path / "loud.wav", 16000)[0]
    assert loud.max() <= 1.0 and (np.abs(loud) > 0.99).mean() > 0.3, "PCM clipping is read as it is stored"


def numpy_log_mel(wave: np.ndarray, rate: int, n_fft: int, hop: int, n_mels: int) -> np.ndarray:
    """Independent reference: reflect-padded frames, periodic Hann window, power spectrum, HTK triangles."""
    padded = np.pad(wave, n_fft // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.stack([padded[i:i + n_fft] * window for i in range(0, len(padded) - n_fft + 1, hop)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (frames, n_fft // 2 + 1)
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    edges = 700 * (10 ** (np.linspace(mel(0), mel(rate / 2), n_mels + 2) / 2595) - 1)
    freqs = np.linspace(0, rate / 2, n_fft // 2 + 1)
    bank = np.zeros((len(freqs), n_mels))
    for m in range(n_mels):
        lo, mid, hi = edges[m:m + 3]
        for k, f in enumerate(freqs):
            bank[k, m] = max(0.0, min((f - lo) / (mid - lo), (hi - f) / (hi - mid)))
    return np.log(power @ bank + 1e-6)


def test_log_mel_matches_numpy():
    rng = np.random.default_rng(0)
    wave = (tone(300, 16000, 0.3) + 0.05 * rng.standard_normal(4800)).astype(np.float32)
    ours = log_mel(torch.from_numpy(wave), mel_filterbank(16000, 400, 40), 400, 160).numpy()
    reference = numpy_log_mel(wave, 16000, 400, 160, 40)
    assert ours.shape == reference.shape == (31, 40)
    np.testing.assert_allclose(ours, reference, atol=2e-3, rtol=1e-3)


def test_audio_processor_masks_crops_and_reports_bad_files(tmp_path):
    sf.write(tmp_path / "short.wav", tone(440, 16000, 0.3), 16000)
    sf.write(tmp_path / "long.wav", tone(440, 16000, 1.5), 16000)
    sf.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    sf.write(tmp_path / "tiny.wav", tone(440, 16000, 0.005), 16000)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF not really")
    values = pd.Series(["short.wav", "long.wav", "empty.wav", "tiny.wav", "corrupt.wav", "gone.wav", None])
    proc = AudioProcessor("a", max_seconds=1.0, n_mels=32).fit(values, tmp_path)
    out = proc.transform(values, tmp_path)
    assert out.values.shape == (7, 100, 33)
    assert out.values[0, :, -1].sum() == 30 and out.values[1, :, -1].sum() == 100
    assert out.present.tolist() == [True, True, False, False, False, False, False]
    kinds = {(p.row, p.kind) for p in out.problems}
    assert kinds == {(1, TRUNCATED), (2, UNREADABLE), (3, UNREADABLE), (4, UNREADABLE), (5, UNREADABLE), (6, EMPTY)}
    details = {p.row: p.detail for p in out.problems}
    assert "shorter than one 10 ms frame" in details[3] and "empty.wav" in details[2] and "gone.wav" in details[5]
    batch = proc.prepare_batch(out.values[:2], train=False)
    assert torch.all(batch[0, 30:] == 0), "padding stays zero after normalisation"
    again = Processor.from_state(json.loads(json.dumps(proc.state_dict())))
    assert torch.allclose(again.prepare_batch(out.values[:2], train=False), batch)
    torch.manual_seed(0)
    assert not torch.equal(proc.prepare_batch(out.values[:2], train=True), batch), "SpecAugment at train time"


def test_sequence_processor_lists_npy_padding_and_bad_values(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(12, dtype=np.float32).reshape(6, 2))
    train = pd.Series(["a.npy", json.dumps([[1, 2], [3, 4]]), [[0.5, 0.5]] * 4])
    proc = SequenceProcessor("s", max_length=5).fit(train, tmp_path)
    assert (proc.length_, proc.n_features_) == (5, 2)
    out = proc.transform(pd.Series(["a.npy", "[[1, 2]]", "[[1, 2, 3]]", "[[NaN, 1]]", None]), tmp_path)
    assert out.values.shape == (5, 5, 3)
    assert out.values[:, :, -1].sum(1).tolist() == [5, 1, 0, 0, 0]
    assert torch.equal(out.values[0, :, :2], torch.arange(10.0).view(5, 2))
    kinds = sorted((p.row, p.kind) for p in out.problems)
    assert kinds == [(0, TRUNCATED), (2, UNREADABLE), (3, UNREADABLE), (4, EMPTY)]
    assert "expected 2 features per step, got 3" in next(p.detail for p in out.problems if p.row == 2)


def test_detects_audio_and_sequence_columns(tmp_path):
    frame = pd.DataFrame({"clip": [f"c{i}.wav" for i in range(30)], "mfcc": [f"m{i}.npy" for i in range(30)],
                          "sensor": [[float(i), 1.0, 2.0] for i in range(30)], "y": [0, 1] * 15})
    kinds = {c.name: c.modality for c in detect_columns(frame, "y", tmp_path)}
    assert kinds == {"clip": "audio", "mfcc": "sequence", "sensor": "sequence"}


def test_audio_and_sequence_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(120):
        y = int(rng.integers(2))
        sf.write(tmp_path / f"{i}.wav", tone(300 if y else 1200, 8000, rng.uniform(0.2, 0.5)), 8000)
        steps = int(rng.integers(5, 15))
        rows.append({"clip": f"{i}.wav", "signal": json.dumps((rng.normal(y, 1.0, (steps, 3))).round(3).tolist()),
                     "y": y})
    frame = pd.DataFrame(rows)
    frame.loc[5, "clip"] = "missing.wav"
    options = dict(preset="fast", max_epochs=8, threads=2, progress=False, verbose=False, on_bad_row="skip",
                   config={"preprocess": {"audio": {"sample_rate": 8000, "max_seconds": 0.5, "n_mels": 32}}})
    predictor = Predictor(label="y", **options).fit(frame)
    assert {c.name: c.modality for c in predictor.columns_} == {"clip": "audio", "signal": "sequence"}
    assert predictor.metrics_["valid"]["accuracy"] >= 0.85
    assert [s["row"] for s in predictor.data_report_["train"]["skipped"] + predictor.data_report_["valid"]["skipped"]] == [5]
    predictor.save(tmp_path / "m")
    again = Predictor.load(tmp_path / "m", verbose=False)
    pd.testing.assert_frame_equal(again.predict_frame(frame.head(20)), predictor.predict_frame(frame.head(20)))
