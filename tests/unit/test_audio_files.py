"""Audio files as users make them: WAV files written by sox (plain and WAVE_FORMAT_EXTENSIBLE headers, 8/16/24/32-bit
integer and float), FLAC and OGG Vorbis at any rate and channel count, read through soundfile, downmixed and
resampled; a WAV stream on stdin in any of those sample formats; and clear errors for what cannot be read."""
from __future__ import annotations

import io
import shutil
import subprocess
import threading
import time

import numpy as np
import pytest

from mmchat_ros.backends.audio_io import (AudioFileError, FileAudioSource, WavStreamReader, read_audio, read_wav,
                                          read_wav_as)

pytestmark = pytest.mark.skipif(shutil.which("sox") is None, reason="needs sox (apt-get install sox)")
AMPLITUDE = 0.5          # sox's "synth ... sine 440 vol 0.5": peak at half full scale


def sox(path, rate: int, channels: int, *fmt: str, seconds: float = 0.5, freqs=(440,)):
    """A sine per channel (the frequencies cycle over the channels), made by sox."""
    tones = []
    for _ in range(channels):
        tones += ["sine", str(freqs[len(tones) // 2 % len(freqs)])]
    subprocess.run(["sox", "-n", "-r", str(rate), "-c", str(channels), *fmt, str(path), "synth", str(seconds),
                    *tones, "vol", str(AMPLITUDE)], check=True, capture_output=True, timeout=30)
    return path


def format_code(path) -> int:
    return int.from_bytes(path.read_bytes()[20:22], "little")


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[np.argmax(spectrum)])


def peak(samples: np.ndarray) -> float:
    """Peak level as a fraction of full scale, ignoring the edges (resampling rings there)."""
    middle = samples[samples.size // 10: -samples.size // 10].astype(np.float64)
    return float(np.abs(middle).max() / 32768.0)


@pytest.mark.parametrize("name, rate, channels, fmt, tolerance", [
    ("pcm16-mono.wav", 16000, 1, ["-b", "16"], 0.002),
    ("pcm16-4ch-extensible.wav", 16000, 4, ["-b", "16"], 0.002),        # sox: > 2 channels -> extensible
    ("pcm24-stereo-44k1.wav", 44100, 2, ["-b", "24"], 0.01),            # > 16 bits -> extensible
    ("pcm32-mono-48k.wav", 48000, 1, ["-b", "32"], 0.01),
    ("pcm8-mono-8k.wav", 8000, 1, ["-b", "8"], 0.02),                   # unsigned 8-bit
    ("float32-stereo-22k05.wav", 22050, 2, ["-e", "floating-point", "-b", "32"], 0.01),
    ("flac24-22k05.flac", 22050, 1, ["-b", "24"], 0.01),
    ("vorbis-stereo-32k.ogg", 32000, 2, [], 0.06),                      # lossy
])
def test_sox_files_of_every_kind_read_as_16k_mono(tmp_path, name, rate, channels, fmt, tolerance):
    path = sox(tmp_path / name, rate, channels, *fmt)
    if "extensible" in name or name.startswith("pcm24"):
        assert format_code(path) == 0xFFFE          # what the old reader refused ("unknown format: 65534")
    samples, file_rate = read_wav(path)
    assert file_rate == rate and samples.dtype == np.int16 and samples.ndim == 1
    assert samples.size == pytest.approx(0.5 * rate, abs=rate * 0.01)
    at_16k = read_wav_as(path, 16000)
    assert at_16k.dtype == np.int16 and at_16k.size == pytest.approx(8000, abs=160)
    assert dominant_hz(at_16k, 16000) == pytest.approx(440, abs=5)
    assert peak(at_16k) == pytest.approx(AMPLITUDE, abs=tolerance + 0.005)


def test_hand_made_16_bit_mono_extensible_header_reads_exactly(tmp_path):
    """WAVE_FORMAT_EXTENSIBLE with the PCM sub-format, 16-bit mono: the exact case of the bug report."""
    tone = (np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000) * 12000).astype("<i2")
    guid_pcm = bytes.fromhex("0100000000001000800000aa00389b71")
    fmt = (0xFFFE).to_bytes(2, "little") + (1).to_bytes(2, "little") + (16000).to_bytes(4, "little") + \
        (32000).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little") + \
        (22).to_bytes(2, "little") + (16).to_bytes(2, "little") + (4).to_bytes(4, "little") + guid_pcm
    data = tone.tobytes()
    body = b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt + b"data" + len(data).to_bytes(4, "little") + data
    (tmp_path / "ext.wav").write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)
    samples, rate = read_wav(tmp_path / "ext.wav")
    assert rate == 16000 and np.array_equal(samples, tone)          # bit-exact for 16-bit input
    stream = WavStreamReader(io.BytesIO((tmp_path / "ext.wav").read_bytes()))
    assert (stream.sample_rate, stream.channels, stream.width) == (16000, 1, 2)
    streamed = np.concatenate([stream.read(1000) for _ in range(17)])
    assert np.array_equal(np.round(streamed * 32768).astype(np.int16), tone)


def test_downmix_averages_the_channels(tmp_path):
    path = sox(tmp_path / "two-tones.wav", 16000, 2, "-b", "16", freqs=(440, 1000))
    mono, _ = read_audio(path)
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(mono.size)))
    freqs = np.fft.rfftfreq(mono.size, 1 / 16000)
    level = {hz: spectrum[np.argmin(np.abs(freqs - hz))] for hz in (440, 1000)}
    assert level[440] == pytest.approx(level[1000], rel=0.05)        # both channels present, equal weight
    assert np.abs(mono).max() <= AMPLITUDE + 0.01                     # averaged, not summed


@pytest.mark.parametrize("contents, why", [
    (b"", "empty"),
    (b"RIFF0000WAVEjunk", "a WAV header cut short"),
    (b"this is a text file, not audio\n" * 20, "not audio at all"),
    (b"fLaC" + bytes(range(256)) * 4, "a FLAC signature over garbage"),
])
def test_unreadable_files_raise_an_error_naming_the_file_and_the_reason(tmp_path, contents, why):
    path = tmp_path / "broken.wav"
    path.write_bytes(contents)
    with pytest.raises(AudioFileError, match=r"broken\.wav: not a readable audio file \(.+\)") as raised:
        read_wav_as(path, 16000)
    assert isinstance(raised.value, ValueError), why                   # callers catching ValueError still do
    with pytest.raises(FileNotFoundError, match="missing.flac"):
        read_wav(tmp_path / "missing.flac")


def test_a_truncated_sox_file_still_plays_what_it_has(tmp_path):
    """A recording cut short (the data chunk's size says more than there is) gives the samples present."""
    path = sox(tmp_path / "long.wav", 16000, 1, "-b", "16", seconds=1.0)
    path.write_bytes(path.read_bytes()[:44 + 16000])                   # header + 0.5 s
    samples, rate = read_wav(path)
    assert rate == 16000 and samples.size == pytest.approx(8000, abs=2)


def run_source(source: FileAudioSource) -> np.ndarray:
    chunks = []
    source.run(lambda samples, _time: chunks.append(samples), threading.Event())
    return np.concatenate(chunks)


@pytest.mark.parametrize("name, fmt", [("stream24.wav", ["-b", "24"]), ("stream-float.wav", ["-e", "floating-point"]),
                                       ("stream.flac", [])])
def test_stdin_streams_of_any_kind_play(tmp_path, name, fmt):
    path = sox(tmp_path / name, 44100, 2, *fmt)
    played = run_source(FileAudioSource("-", 16000, 512, realtime=False, stdin=io.BytesIO(path.read_bytes())))
    assert played.size == pytest.approx(8000, abs=512)                 # whole chunks, the last one padded
    assert dominant_hz(played[:7680], 16000) == pytest.approx(440, abs=5)
    assert peak(played[:7680]) == pytest.approx(AMPLITUDE, abs=0.02)


def test_file_source_replays_flac_and_reports_a_broken_file(tmp_path):
    path = sox(tmp_path / "cmd.flac", 48000, 1)
    played = run_source(FileAudioSource(str(path), 16000, 512, realtime=False))
    assert dominant_hz(played, 16000) == pytest.approx(440, abs=5)
    broken = tmp_path / "broken.ogg"
    broken.write_bytes(b"OggS" + bytes(200))
    with pytest.raises(AudioFileError, match="broken.ogg"):
        run_source(FileAudioSource(str(broken), 16000, 512, realtime=False))
    with pytest.raises(AudioFileError, match="stdin: unsupported WAV stream"):
        mp3_in_wav = b"RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + (0x55).to_bytes(2, "little") + \
            bytes(14) + b"data\x00\x00\x00\x00" + bytes(100)
        run_source(FileAudioSource("-", 16000, 512, realtime=False, stdin=io.BytesIO(mp3_in_wav)))


def test_slow_decoding_does_not_make_a_burst_of_chunks(tmp_path, monkeypatch):
    """The file is decoded before the real-time clock starts: a decode that takes a while (a big 44.1 kHz file, a
    loaded machine) must not make the chunks already due go out at once (a subscriber's queue would drop them)."""
    from mmchat_ros.backends import audio_io
    path = sox(tmp_path / "cmd.wav", 44100, 2, "-b", "24", seconds=0.4)
    real_read = audio_io.read_wav_as

    def slow_read(*args):
        time.sleep(0.5)
        return real_read(*args)
    monkeypatch.setattr(audio_io, "read_wav_as", slow_read)
    arrivals = []
    FileAudioSource(str(path), 16000, 512, realtime=True).run(lambda *_: arrivals.append(time.monotonic()),
                                                              threading.Event())
    gaps = np.diff(arrivals)
    assert len(arrivals) == 13 and np.median(gaps) == pytest.approx(0.032, abs=0.01)
    assert (gaps < 0.01).sum() <= 2                   # paced as captured, not a burst of the first 0.5 s
