"""A fake backend for testing compile(), Library and the registry before (and besides) the real
ones: it parses with the shared signature parser, keeps an "artifact" in the disk cache like a
real driver, and returns a native library whose kernels check arguments and record launches."""

import time

import metalrt
from metalrt import _C
from metalrt.cache import DiskCache


class FakeTimer:
    def __init__(self):
        self.events = []

    def start(self):
        self.events.append("start")

    def stop(self):
        self.events.append("stop")

    def elapsed_ms(self):
        self.events.append("elapsed")
        return 1.25

    @property
    def method(self):
        return "fake-clock"


class FakeDriver:
    name = "fake"

    def __init__(self):
        self.builds = 0          # compile() calls that reached the driver
        self.compiles = 0        # cache misses on disk (the expensive part of a real build)
        self.synchronized = 0
        self.timers = []

    def unavailable_reason(self):
        return None

    def device(self):
        return metalrt.Device(backend="fake", name="fake device", target="fake-1", max_threads_per_group=512)

    def compiler_id(self):
        return "fake-compiler-1"

    def build(self, source, options):
        self.builds += 1
        parsed = _C.parse_msl(source, dict(options.defines))
        cache = DiskCache("fake", suffix=".txt")
        key = DiskCache.key(backend=self.name, target="fake-1", compiler_id=self.compiler_id(), options=options,
                            source=source)

        def compile_to(path):
            self.compiles += 1
            time.sleep(0.01)
            path.write_text(parsed.preprocessed)

        cache.get_or_create(key, compile_to)
        limits = _C.KernelLimits()
        limits.max_threads_per_group = 512
        return _C._RecordingLibrary(parsed, limits=limits, backend=self.name)

    def synchronize(self):
        self.synchronized += 1

    def timer(self):
        t = FakeTimer()
        self.timers.append(t)
        return t
