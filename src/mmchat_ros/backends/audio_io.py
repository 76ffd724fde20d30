"""Audio in and out: audio files and WAV streams, the sound card (sounddevice / PortAudio), fixed-size chunking,
resampling.

Files are read through soundfile (libsndfile): WAV of every PCM and float kind (WAVE_FORMAT_EXTENSIBLE headers, as sox
writes them, included), FLAC, OGG Vorbis/Opus, AIFF, ... at any rate and channel count, downmixed to mono and
resampled to what the caller asks; what libsndfile cannot decode raises AudioFileError naming the file and why. A
WAV stream on stdin is decoded as it arrives (WavStreamReader), so a live pipe plays without waiting for its end.

Sources deliver int16 mono chunks of a fixed size at the pipeline's rate, stamped with the capture time of their
first sample; sinks play int16 mono audio and can be interrupted mid-utterance (barge-in).
"""
from __future__ import annotations

import array
import io
import queue
import threading
import time
import wave
from collections.abc import Callable
from math import gcd
from pathlib import Path
from typing import BinaryIO

import numpy as np

ChunkCallback = Callable[[np.ndarray, float], None]   # (int16 samples, capture time of the first one in s)


class AudioDeviceError(RuntimeError):
    """The sound card cannot be opened (none, wrong name, unsupported rate): the message says which and why."""


# ------------------------------------------------------------------------------------------------ conversions
def int16_array(samples: np.ndarray) -> array.array:
    """What an int16[] message field holds (array('h')), built from bytes: ~50x faster than assigning numpy."""
    out = array.array("h")
    out.frombytes(np.ascontiguousarray(samples, dtype=np.int16).tobytes())
    return out


def int16_numpy(field) -> np.ndarray:
    """An int16[] message field as a numpy array (a copy-free view when the field is an array('h'))."""
    return np.frombuffer(field, dtype=np.int16) if isinstance(field, array.array) else np.asarray(field, np.int16)


def to_int16(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples)
    if samples.dtype == np.int16:
        return samples
    if np.issubdtype(samples.dtype, np.floating):
        return (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype(np.int16)
    raise ValueError(f"cannot convert {samples.dtype} audio to int16")


def to_mono(samples: np.ndarray) -> np.ndarray:
    """(frames, channels) -> (frames,), averaging the channels."""
    if samples.ndim == 1:
        return samples
    if samples.shape[1] == 1:
        return samples[:, 0]
    return to_int16(samples.astype(np.float32).mean(axis=1) / 32768.0) if samples.dtype == np.int16 \
        else samples.mean(axis=1)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Polyphase resampling of int16 (or float) mono audio; same dtype out."""
    if from_rate == to_rate:
        return samples
    from scipy.signal import resample_poly
    divisor = gcd(int(from_rate), int(to_rate))
    out = resample_poly(samples.astype(np.float32), int(to_rate) // divisor, int(from_rate) // divisor)
    return to_int16(out / 32768.0) if samples.dtype == np.int16 else out.astype(samples.dtype)


class AudioFileError(ValueError):
    """An audio file that cannot be read: the message names the file and says why."""


def _source_name(source) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return getattr(source, "name", None) or f"<{type(source).__name__}>"


def _float_to_int16(samples: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1) (libsndfile's scale: int16 x reads as x / 32768) -> int16, exact for 16-bit sources."""
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16)


def read_audio(source: str | Path | BinaryIO) -> tuple[np.ndarray, int]:
    """Any audio file libsndfile reads — WAV (PCM 8/16/24/32-bit, float, WAVE_FORMAT_EXTENSIBLE headers as sox
    writes them), FLAC, OGG Vorbis/Opus, AIFF, ... at any rate and channel count — as float32 mono in [-1, 1) (the
    channels averaged) and its rate. Raises FileNotFoundError for a missing file and AudioFileError (naming the
    file and the reason) for anything libsndfile cannot decode."""
    import soundfile
    name = _source_name(source)
    if isinstance(source, (str, Path)):
        source = Path(source).expanduser()
        if not source.is_file():
            raise FileNotFoundError(f"audio file not found: {name}")
        source = str(source)
    try:
        samples, rate = soundfile.read(source, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, EOFError) as exc:
        raise AudioFileError(f"{name}: not a readable audio file ({exc})") from exc
    if rate <= 0:
        raise AudioFileError(f"{name}: not a readable audio file (sample rate {rate})")
    mono = samples[:, 0] if samples.shape[1] == 1 else samples.mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(mono, dtype=np.float32), int(rate)


def read_wav(source: str | Path | BinaryIO) -> tuple[np.ndarray, int]:
    """An audio file (any format read_audio reads, despite the name) as int16 mono samples and their rate."""
    samples, rate = read_audio(source)
    return _float_to_int16(samples), rate


def read_wav_as(path: str | Path | BinaryIO, sample_rate: int) -> np.ndarray:
    """An audio file (WAV, FLAC, OGG, ... any rate and channels) as int16 mono at ``sample_rate``."""
    samples, rate = read_audio(path)
    return _float_to_int16(resample(samples, rate, sample_rate))


# ------------------------------------------------------------------------------------ WAV streams (stdin, pipes)
_PCM, _IEEE_FLOAT, _EXTENSIBLE = 0x0001, 0x0003, 0xFFFE


class WavStreamReader:
    """Reads a WAV stream incrementally from a pipe (no seeking), frames as the writer produces them: PCM
    8/16/24/32-bit and IEEE float 32/64-bit, plain or WAVE_FORMAT_EXTENSIBLE headers, any channels. A streamed
    header's data size is often 0 or 0xFFFFFFFF (the writer could not know it): then the stream is read to its
    end, otherwise to the end of the data chunk."""

    def __init__(self, stream: BinaryIO, name: str = "<stream>"):
        self.stream = stream
        self.name = name
        header = self._read_exact(12)
        if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            raise AudioFileError(f"{name}: not a WAV stream (starts with {header[:12]!r})")
        fmt = None
        while True:
            chunk = self._read_exact(8)
            chunk_id, size = chunk[:4], int.from_bytes(chunk[4:8], "little")
            if chunk_id == b"data":
                # a writer that streams cannot know the size: 0 or 0xFFFFFFFF (or -1) means "to the end"
                self._remaining = size if 0 < size < 0xFFFFFFFF else None
                break
            body = self._read_exact(size + (size & 1))
            if chunk_id == b"fmt ":
                fmt = body[:size]
        if fmt is None or len(fmt) < 16:
            raise AudioFileError(f"{name}: WAV stream without a format chunk before its data")
        tag = int.from_bytes(fmt[0:2], "little")
        self.channels = int.from_bytes(fmt[2:4], "little")
        self.sample_rate = int.from_bytes(fmt[4:8], "little")
        bits = int.from_bytes(fmt[14:16], "little")
        if tag == _EXTENSIBLE:
            if len(fmt) < 40:
                raise AudioFileError(f"{name}: WAVE_FORMAT_EXTENSIBLE header too short ({len(fmt)} bytes)")
            tag = int.from_bytes(fmt[24:26], "little")    # the sub-format GUID starts with the format code
        self.width = (bits + 7) // 8
        supported = (tag == _PCM and self.width in (1, 2, 3, 4)) or (tag == _IEEE_FLOAT and self.width in (4, 8))
        if not supported or self.channels <= 0 or self.sample_rate <= 0:
            raise AudioFileError(f"{name}: unsupported WAV stream (format {tag:#06x}, {bits} bits, "
                                 f"{self.channels} channels, {self.sample_rate} Hz)")
        self.float_samples = tag == _IEEE_FLOAT
        self._pending = b""

    def _read_exact(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            part = self.stream.read(count - len(data))
            if not part:
                raise AudioFileError(f"{self.name}: WAV stream ends inside its header")
            data += part
        return data

    def read(self, frames: int) -> np.ndarray:
        """Up to ``frames`` frames as float32 mono (fewer at the end; empty when the stream is over)."""
        frame_bytes = self.width * self.channels
        want = frames * frame_bytes - len(self._pending)
        if self._remaining is not None:
            want = min(want, self._remaining)
        raw = self._pending
        while want > 0:                      # a raw pipe may return less than asked: read until the block is whole
            part = self.stream.read(want)
            if not part:
                break
            raw += part
            want -= len(part)
            if self._remaining is not None:
                self._remaining -= len(part)
        usable = len(raw) // frame_bytes * frame_bytes
        raw, self._pending = raw[:usable], raw[usable:]
        return _decode_frames(raw, self.width, self.channels, self.float_samples)


def _decode_frames(raw: bytes, width: int, channels: int, float_samples: bool) -> np.ndarray:
    if float_samples:
        samples = np.frombuffer(raw, dtype="<f4" if width == 4 else "<f8").astype(np.float32)
    elif width == 1:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 3:
        bytes3 = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = bytes3[:, 0] | (bytes3[:, 1] << 8) | (bytes3[:, 2] << 16)
        samples = (np.where(value >= 1 << 23, value - (1 << 24), value) / float(1 << 23)).astype(np.float32)
    else:
        samples = (np.frombuffer(raw, dtype="<i4") / 2147483648.0).astype(np.float32)
    samples = samples.reshape(-1, channels)
    return samples[:, 0] if channels == 1 else samples.mean(axis=1, dtype=np.float32)


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(int(sample_rate))
        wav.writeframes(to_int16(samples).astype("<i2").tobytes())


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(int(sample_rate))
        wav.writeframes(to_int16(samples).astype("<i2").tobytes())
    return buffer.getvalue()


class Chunker:
    """Regroups audio arriving in any block sizes into fixed-size chunks with the capture time of each chunk's first
    sample. The timeline is anchored at the first block's time and then advanced by the sample count (the sound
    card's clock), so scheduling jitter in when blocks arrive does not leak into the stamps; it is re-anchored when a
    block's time is more than resync_s off (audio was lost, or the clocks drifted apart)."""

    def __init__(self, chunk_samples: int, sample_rate: int, resync_s: float = 0.5):
        if chunk_samples <= 0:
            raise ValueError("chunk_samples must be positive")
        self.chunk_samples = chunk_samples
        self.sample_rate = sample_rate
        self.resync_s = resync_s
        self._buffer = np.zeros(0, dtype=np.int16)
        self._buffer_time: float | None = None

    def push(self, samples: np.ndarray, time_first: float) -> list[tuple[np.ndarray, float]]:
        expected = None if self._buffer_time is None else self._buffer_time + self._buffer.size / self.sample_rate
        if expected is None or abs(time_first - expected) > self.resync_s:
            self._buffer = np.zeros(0, dtype=np.int16)
            self._buffer_time = time_first
        self._buffer = np.concatenate([self._buffer, samples.astype(np.int16, copy=False)])
        chunks = []
        while self._buffer.size >= self.chunk_samples:
            chunks.append((self._buffer[:self.chunk_samples].copy(), self._buffer_time))
            self._buffer = self._buffer[self.chunk_samples:]
            self._buffer_time += self.chunk_samples / self.sample_rate
        return chunks

    def flush(self) -> list[tuple[np.ndarray, float]]:
        """The last partial chunk, padded with silence."""
        if self._buffer.size == 0:
            return []
        chunk = np.zeros(self.chunk_samples, dtype=np.int16)
        chunk[:self._buffer.size] = self._buffer
        self._buffer = np.zeros(0, dtype=np.int16)
        time_first, self._buffer_time = self._buffer_time, None
        return [(chunk, time_first)]


class _Prefixed:
    """A stream with some bytes already read from it put back in front."""

    def __init__(self, prefix: bytes, stream: BinaryIO):
        self._prefix, self._stream = prefix, stream

    def read(self, count: int = -1) -> bytes:
        if not self._prefix:
            return self._stream.read(count)
        if count < 0:
            data, self._prefix = self._prefix + self._stream.read(), b""
            return data
        data, self._prefix = self._prefix[:count], self._prefix[count:]
        return data if len(data) == count else data + self._stream.read(count - len(data))


# ----------------------------------------------------------------------------------------------------- sources
class FileAudioSource:
    """Replays an audio file (or a WAV stream such as stdin, path "-") as fixed chunks, paced in real time (or as fast
    as the consumer takes them with realtime=False).

    Capture times are ``start time + sample offset / rate``, as a microphone's would be. Silence can be added before
    and after (so a VAD sees the end of speech that ends the file).
    """

    def __init__(self, path: str, sample_rate: int = 16000, chunk_samples: int = 512, realtime: bool = True,
                 lead_silence_s: float = 0.0, trail_silence_s: float = 0.0, loop: bool = False,
                 stdin: BinaryIO | None = None):
        self.path = path
        self.sample_rate = sample_rate
        self.chunk_samples = chunk_samples
        self.realtime = realtime
        self.lead_silence_s = lead_silence_s
        self.trail_silence_s = trail_silence_s
        self.loop = loop
        self._stdin = stdin
        self._audio: np.ndarray | None = None
        if path != "-" and not Path(path).is_file():
            raise FileNotFoundError(f"audio file not found: {path}")

    def _blocks(self):
        """int16 mono blocks at the pipeline rate: the whole file, or a stream as it arrives (a WAV stream is
        decoded as it comes; any other format on stdin is read to its end, then decoded)."""
        if self.path != "-":
            yield self._file_audio()
            return
        import sys
        stream = self._stdin or sys.stdin.buffer
        head = stream.read(4)
        if head != b"RIFF":
            yield read_wav_as(io.BytesIO(head + stream.read()), self.sample_rate)
            return
        reader = WavStreamReader(_Prefixed(head, stream), name="stdin")
        frames_per_block = max(1, reader.sample_rate // 20)
        while True:
            block = reader.read(frames_per_block)
            if block.size == 0:
                return
            yield _float_to_int16(resample(block, reader.sample_rate, self.sample_rate))

    def _file_audio(self) -> np.ndarray:
        """The whole file at the pipeline rate, decoded once (a looped file is not read again)."""
        if self._audio is None:
            self._audio = read_wav_as(self.path, self.sample_rate)
        return self._audio

    def run(self, on_chunk: ChunkCallback, stop: threading.Event, clock: Callable[[], float] = time.time) -> int:
        """Publish every chunk through ``on_chunk`` until the end (or ``stop``); returns the chunks sent."""
        chunker = Chunker(self.chunk_samples, self.sample_rate)
        if self.path != "-":
            # decoded and resampled before the clock starts: decoding takes time (a 44.1 kHz 24-bit file, a loaded
            # machine), and chunks already due by then would go out in one burst that a subscriber's queue drops
            self._file_audio()
        start = clock()
        sent = 0
        offset = 0          # samples delivered so far, for capture times and pacing

        def deliver(chunks) -> bool:
            nonlocal sent
            for samples, capture in chunks:
                if self.realtime:
                    # a sound card delivers a chunk once its last sample is captured: wait for that moment
                    delay = capture + self.chunk_samples / self.sample_rate - clock()
                    if delay > 0 and stop.wait(delay):
                        return False
                if stop.is_set():
                    return False
                on_chunk(samples, capture)
                sent += 1
            return True

        def feed(samples: np.ndarray) -> bool:
            nonlocal offset
            chunks = chunker.push(samples, start + offset / self.sample_rate)
            offset += samples.size
            return deliver(chunks)

        silence = lambda seconds: np.zeros(int(round(seconds * self.sample_rate)), dtype=np.int16)  # noqa: E731
        if not feed(silence(self.lead_silence_s)):
            return sent
        while True:
            for block in self._blocks():
                if not feed(block):
                    return sent
            if not self.loop or self.path == "-":
                break
        if feed(silence(self.trail_silence_s)):
            deliver(chunker.flush())
        return sent


def _sounddevice():
    try:
        import sounddevice
    except OSError as exc:   # the PortAudio library itself is missing
        raise AudioDeviceError(f"PortAudio is not available ({exc}); install libportaudio2") from exc
    return sounddevice


def _device_arg(device: str):
    """'' = the system default; a number = a device index; anything else = a (part of a) device name."""
    device = device.strip()
    if not device:
        return None
    return int(device) if device.lstrip("-").isdigit() else device


def device_summary() -> str:
    """One line on the sound cards PortAudio sees; raises AudioDeviceError when PortAudio is missing."""
    devices = _sounddevice().query_devices()
    inputs = [d["name"] for d in devices if d.get("max_input_channels", 0) > 0]
    outputs = [d["name"] for d in devices if d.get("max_output_channels", 0) > 0]
    if not inputs and not outputs:
        return "PortAudio present, no sound card: use audio_input source:=file and tts output:=file"
    return f"{len(inputs)} input device(s) ({', '.join(inputs[:3])}), {len(outputs)} output device(s)"


def list_devices() -> str:
    try:
        return str(_sounddevice().query_devices())
    except Exception as exc:  # noqa: BLE001 - only for error messages
        return f"(cannot list audio devices: {exc})"


class DeviceAudioSource:
    """The microphone through sounddevice: captured at the device's rate, downmixed, resampled and chunked."""

    def __init__(self, device: str = "", sample_rate: int = 16000, chunk_samples: int = 512,
                 device_sample_rate: int = 0, channels: int = 1, block_s: float = 0.05):
        self.device = device
        self.sample_rate = sample_rate
        self.chunk_samples = chunk_samples
        self.device_sample_rate = device_sample_rate or sample_rate
        self.channels = channels
        self.block_s = block_s
        self.overflows = 0     # times audio was lost (PortAudio overflow, or this reader fell behind)

    def run(self, on_chunk: ChunkCallback, stop: threading.Event, clock: Callable[[], float] = time.time) -> int:
        """Capture until ``stop``; raises AudioDeviceError when the device cannot be opened or fails."""
        sd = _sounddevice()
        chunker = Chunker(self.chunk_samples, self.sample_rate)
        blocks: queue.Queue = queue.Queue(maxsize=200)
        status_flags: list[str] = []

        def callback(indata, frames, _time_info, status):
            if status:
                status_flags.append(str(status))
            # time of the block's first sample: now minus the block's duration (input latency is small and unknown)
            try:
                blocks.put_nowait((indata.copy(), clock() - frames / self.device_sample_rate))
            except queue.Full:   # the consumer stalled: drop audio rather than raise in PortAudio's thread
                status_flags.append("block dropped")

        try:
            stream = sd.InputStream(device=_device_arg(self.device), samplerate=self.device_sample_rate,
                                    channels=self.channels, dtype="int16", callback=callback,
                                    blocksize=int(self.device_sample_rate * self.block_s))
        except Exception as exc:
            raise AudioDeviceError(f"cannot open audio input device '{self.device or 'default'}' at "
                                   f"{self.device_sample_rate} Hz: {exc}. Devices:\n{list_devices()}") from exc
        sent = 0
        with stream:
            while not stop.is_set():
                try:
                    block, capture = blocks.get(timeout=0.5)
                except queue.Empty:
                    if not stream.active:
                        raise AudioDeviceError(f"audio input device '{self.device or 'default'}' stopped")
                    continue
                if status_flags:   # overflow or dropped blocks: restart the timeline at this block's capture time
                    self.overflows += 1
                    status_flags.clear()
                    chunker = Chunker(self.chunk_samples, self.sample_rate)
                samples = resample(to_mono(block).astype(np.int16), self.device_sample_rate, self.sample_rate)
                for chunk, stamp in chunker.push(samples, capture):
                    on_chunk(chunk, stamp)
                    sent += 1
        return sent


# ------------------------------------------------------------------------------------------------------- sinks
class AudioSink:
    """Plays utterances; interrupt() (from another thread) stops the current one as soon as possible and every
    later one until arm() is called again (so an interrupt between two sentences is not lost)."""

    def __init__(self):
        self._interrupted = threading.Event()

    def interrupt(self) -> None:
        self._interrupted.set()

    def arm(self) -> None:
        self._interrupted.clear()

    def play(self, samples: np.ndarray, sample_rate: int, name: str = "") -> float:
        """Blocks while playing; returns the seconds actually played (less than the audio when interrupted)."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class WavFileSink(AudioSink):
    """Writes each utterance to <directory>/<name>.wav. With realtime=True it takes as long as playing would (in
    small blocks, so barge-in interrupts it and the file holds only what was "played")."""

    def __init__(self, directory: str | Path, realtime: bool = True, block_s: float = 0.05):
        super().__init__()
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.realtime = realtime
        self.block_s = block_s

    def play(self, samples: np.ndarray, sample_rate: int, name: str = "") -> float:
        block = max(1, int(sample_rate * self.block_s))
        played = 0
        start = time.monotonic()
        with wave.open(str(self.directory / f"{name or 'utterance'}.wav"), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(int(sample_rate))
            while played < samples.size:
                if self._interrupted.is_set():
                    break
                part = samples[played:played + block]
                wav.writeframes(to_int16(part).astype("<i2").tobytes())
                played += part.size
                if self.realtime:
                    delay = start + played / sample_rate - time.monotonic()
                    if delay > 0:
                        self._interrupted.wait(delay)
        return played / sample_rate


class DeviceAudioSink(AudioSink):
    """The loudspeaker through sounddevice; opened per utterance (the voice's rate), written in small blocks."""

    def __init__(self, device: str = "", block_s: float = 0.05):
        super().__init__()
        self.device = device
        self.block_s = block_s
        _sounddevice()   # fail at start-up when PortAudio is missing

    def play(self, samples: np.ndarray, sample_rate: int, name: str = "") -> float:
        sd = _sounddevice()
        try:
            stream = sd.OutputStream(device=_device_arg(self.device), samplerate=sample_rate, channels=1,
                                     dtype="int16")
        except Exception as exc:
            raise AudioDeviceError(f"cannot open audio output device '{self.device or 'default'}' at "
                                   f"{sample_rate} Hz: {exc}. Devices:\n{list_devices()}") from exc
        block = max(1, int(sample_rate * self.block_s))
        played = 0
        with stream:
            while played < samples.size and not self._interrupted.is_set():
                part = to_int16(samples[played:played + block])
                stream.write(part.reshape(-1, 1))
                played += part.size
            if self._interrupted.is_set():
                stream.abort()   # drop what the device still buffers
        return played / sample_rate
