"""metalrt.cache: content-addressed disk entries that are verified before use, shared safely
between processes."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from metalrt import cache_dir
from metalrt.cache import FORMAT_VERSION, DiskCache
from procenv import child_env

ROOT = Path(__file__).resolve().parents[2]


def key(**over):
    parts = dict(backend="sim", target="x86_64", compiler_id="clang-19", options=("opts",), source="kernel void f() {}")
    parts.update(over)
    return DiskCache.key(**parts)


@pytest.fixture
def cache(tmp_path):
    return DiskCache("test", suffix=".so", root=tmp_path)


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("METALRT_CACHE_DIR", str(tmp_path / "here"))
    assert cache_dir() == tmp_path / "here" and (tmp_path / "here").is_dir()
    monkeypatch.delenv("METALRT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert cache_dir() == tmp_path / "xdg" / "metalrt"


def test_every_key_field_changes_the_key():
    base = key()
    assert key() == base and len(base) == 64
    for field, value in [("backend", "metal"), ("target", "arm64"), ("compiler_id", "clang-20"),
                         ("options", ("other",)), ("source", "kernel void g() {}")]:
        assert key(**{field: value}) != base, field
    assert key(extra=("abi-2",)) != base
    # fields are length-prefixed: moving a character between fields changes the key
    assert key(backend="si", target="mx86_64") != base


def test_put_and_get(cache):
    k = key()
    assert cache.get(k) is None
    path = cache.put(k, b"payload", meta={"kernels": ["f"]})
    assert path == cache.payload_path(k) and path.read_bytes() == b"payload"
    assert cache.get(k) == path
    manifest = json.loads(cache.manifest_path(k).read_text())
    assert manifest["format"] == FORMAT_VERSION and manifest["key"] == k and manifest["size"] == 7
    assert len(manifest["sha256"]) == 64 and manifest["meta"] == {"kernels": ["f"]}
    assert cache.manifest(k)["meta"] == {"kernels": ["f"]}
    assert not [p for p in cache.directory.iterdir() if p.name.endswith(".tmp")]


def corrupt_flip(cache, k):
    p = cache.payload_path(k)
    data = bytearray(p.read_bytes())
    data[0] ^= 0xFF
    p.write_bytes(bytes(data))


def corrupt_truncate(cache, k):
    p = cache.payload_path(k)
    p.write_bytes(p.read_bytes()[:3])


def corrupt_manifest_version(cache, k):
    m = cache.manifest_path(k)
    record = json.loads(m.read_text())
    record["format"] = FORMAT_VERSION + 1
    m.write_text(json.dumps(record))


def corrupt_manifest_garbage(cache, k):
    cache.manifest_path(k).write_text("{not json")


def corrupt_manifest_missing(cache, k):
    cache.manifest_path(k).unlink()


def corrupt_foreign_entry(cache, k):
    # another entry's files copied under this key: the manifest names the other key
    other = key(source="other")
    cache.put(other, b"foreign payload")
    cache.payload_path(k).write_bytes(cache.payload_path(other).read_bytes())
    cache.manifest_path(k).write_text(cache.manifest_path(other).read_text())


@pytest.mark.parametrize("damage", [corrupt_flip, corrupt_truncate, corrupt_manifest_version, corrupt_manifest_garbage,
                                    corrupt_manifest_missing, corrupt_foreign_entry])
def test_a_damaged_entry_is_deleted_and_rebuilt_never_loaded(cache, damage):
    k = key()
    builds = []

    def build(tmp):
        builds.append(tmp)
        tmp.write_bytes(b"good payload")

    path = cache.get_or_create(k, build)
    assert path.read_bytes() == b"good payload" and len(builds) == 1
    fresh = DiskCache("test", suffix=".so", root=cache.directory.parent)  # no in-process memo
    damage(fresh, k)
    assert fresh.get(k) is None
    assert not fresh.payload_path(k).exists() and not fresh.manifest_path(k).exists()
    path = fresh.get_or_create(k, build)
    assert path.read_bytes() == b"good payload" and len(builds) == 2


def test_damage_is_noticed_by_the_process_that_verified_the_entry(cache):
    k = key()
    cache.put(k, b"good payload")
    assert cache.get(k) is not None
    corrupt_flip(cache, k)  # rewrites the file: new mtime
    os.utime(cache.payload_path(k), ns=(1, 1))
    assert cache.get(k) is None


def test_a_builder_that_writes_nothing_is_an_error(cache):
    with pytest.raises(RuntimeError, match="wrote nothing"):
        cache.get_or_create(key(), lambda tmp: None)
    assert cache.get(key()) is None


def test_a_failing_builder_leaves_no_entry(cache):
    def build(tmp):
        tmp.write_bytes(b"half")
        raise ValueError("compiler crashed")

    with pytest.raises(ValueError):
        cache.get_or_create(key(), build)
    assert cache.get(key()) is None
    assert not [p for p in cache.directory.iterdir() if p.name.endswith(".tmp")]


SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from metalrt.cache import DiskCache
    root, log, delay = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    cache = DiskCache("shared", suffix=".so", root=root)
    key = DiskCache.key(backend="sim", target="t", compiler_id="c", options=(), source="src")
    def build(tmp):
        with open(log, "a") as f:
            f.write("built\\n")
        time.sleep(delay)
        tmp.write_bytes(b"compiled once")
    path = cache.get_or_create(key, build)
    print(path.read_bytes().decode())
""")


def run_script(tmp_path, delay="0"):
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path / "root"), str(tmp_path / "log"), delay],
                            env=child_env(),
                            stdout=subprocess.PIPE, text=True)


def test_a_second_process_reuses_the_entry(tmp_path):
    for _ in range(2):
        p = run_script(tmp_path)
        assert p.communicate(timeout=60)[0].strip() == "compiled once" and p.returncode == 0
    assert (tmp_path / "log").read_text().count("built") == 1


def test_concurrent_processes_build_once(tmp_path):
    procs = [run_script(tmp_path, delay="0.5") for _ in range(2)]
    for p in procs:
        assert p.communicate(timeout=60)[0].strip() == "compiled once" and p.returncode == 0
    assert (tmp_path / "log").read_text().count("built") == 1


def test_clear_and_remove(cache):
    cache.put(key(), b"a")
    cache.put(key(source="b"), b"b")
    cache.remove(key())
    assert cache.get(key()) is None and cache.get(key(source="b")) is not None
    cache.clear()
    assert cache.get(key(source="b")) is None


def test_namespace_must_be_a_plain_name(tmp_path):
    for bad in ["", "a/b", "..", ".hidden"]:
        with pytest.raises(ValueError):
            DiskCache(bad, root=tmp_path)
