"""scripts/oci-image: the release .wasm as an OCI image for Istio's WasmPlugin.

Checks the image layout against the OCI image spec (content-addressed blobs,
descriptors whose digest and size match), the Wasm image spec's *compat*
variant as Istio's fetcher reads it (one tar+gzip layer holding plugin.wasm),
and reproducibility (two builds, one digest).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import tarfile

import pytest

import harness as h

SCRIPT = os.path.join(h.REPO_ROOT, "scripts", "oci-image")
TAG = "0.1.0"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=120)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def wasm() -> bytes:
    p = h.find_wasm()
    if not os.path.exists(p):
        pytest.exit(f"filter not built: {p} missing (cargo build --release --target wasm32-wasip1 -p scopegate)", 3)
    with open(p, "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def built(wasm, tmp_path_factory):
    """Two independent builds of the same .wasm."""
    out = []
    for n in (1, 2):
        d = tmp_path_factory.mktemp(f"oci{n}")
        layout, archive = d / "layout", d / "image.tar"
        r = run(h.find_wasm(), str(layout), TAG, "--archive", str(archive))
        assert r.returncode == 0, r.stdout + r.stderr
        out.append((layout, archive, r.stdout))
    return out


class Layout:
    def __init__(self, root):
        self.root = root

    def json(self, name):
        return json.loads((self.root / name).read_bytes())

    def blob(self, digest: str) -> bytes:
        algo, _, hexdigest = digest.partition(":")
        assert algo == "sha256", digest
        data = (self.root / "blobs" / "sha256" / hexdigest).read_bytes()
        assert sha256(data) == digest, f"blob {digest} does not hash to its name"
        return data

    def resolve(self, desc: dict) -> bytes:
        data = self.blob(desc["digest"])
        assert desc["size"] == len(data), f"descriptor size {desc['size']} != blob size {len(data)}"
        return data


def test_image_layout_and_descriptors(built, wasm):
    root, _, _ = built[0]
    lay = Layout(root)
    assert lay.json("oci-layout") == {"imageLayoutVersion": "1.0.0"}
    index = lay.json("index.json")
    assert index["schemaVersion"] == 2 and index["mediaType"] == INDEX_TYPE
    (mdesc,) = index["manifests"]
    assert mdesc["mediaType"] == MANIFEST_TYPE
    assert mdesc["annotations"]["org.opencontainers.image.ref.name"] == TAG
    manifest_bytes = lay.resolve(mdesc)  # digest = sha256 of the manifest blob, size matches
    manifest = json.loads(manifest_bytes)
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == MANIFEST_TYPE
    assert manifest["annotations"] == {"module.wasm.image/variant": "compat"}
    assert manifest["config"]["mediaType"] == CONFIG_TYPE
    config = json.loads(lay.resolve(manifest["config"]))
    (ldesc,) = manifest["layers"]
    assert ldesc["mediaType"] == LAYER_TYPE
    layer = lay.resolve(ldesc)
    tar_bytes = gzip.decompress(layer)
    # the layer is exactly the .wasm, as plugin.wasm
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["plugin.wasm"]
        (m,) = members
        assert m.isfile() and m.size == len(wasm)
        assert (m.mtime, m.uid, m.gid, m.mode) == (0, 0, 0, 0o644)
        assert tar.extractfile(m).read() == wasm
    assert config["rootfs"] == {"type": "layers", "diff_ids": [sha256(tar_bytes)]}
    assert (config["os"], config["architecture"]) == ("wasip1", "wasm")
    # nothing else in the layout
    blobs = sorted(p.name for p in (root / "blobs" / "sha256").iterdir())
    expected = sorted(d["digest"].split(":")[1] for d in (mdesc, manifest["config"], ldesc))
    assert blobs == expected
    assert sorted(p.name for p in root.iterdir()) == ["blobs", "index.json", "oci-layout"]


def istio_extract(lay: Layout) -> tuple[str, bytes]:
    """What Istio's image fetcher does with this image (pkg/wasm/imagefetcher.go,
    cache.go): the digest it compares WasmPlugin.sha256 with, and the module."""
    (mdesc,) = lay.json("index.json")["manifests"]
    manifest_bytes = lay.resolve(mdesc)
    manifest = json.loads(manifest_bytes)
    # a registry serves these bytes; the image digest is their sha256
    actual_digest = hashlib.sha256(manifest_bytes).hexdigest()
    assert manifest.get("mediaType") != "application/vnd.docker.distribution.manifest.v2+json"
    # compat variant: the last layer must be an OCI tar+gzip layer holding plugin.wasm
    layer_desc = manifest["layers"][-1]
    assert layer_desc["mediaType"] == LAYER_TYPE
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(lay.resolve(layer_desc)))) as tar:
        for m in tar:
            if os.path.basename(m.name) == "plugin.wasm":
                module = tar.extractfile(m).read()
                break
        else:
            raise AssertionError("plugin.wasm not found in the layer")
    # isValidWasmBinary
    assert len(module) >= 8 and module[:4] == b"\0asm"
    return actual_digest, module


def test_istio_reads_the_module_and_the_printed_sha256(built, wasm):
    root, _, stdout = built[0]
    digest, module = istio_extract(Layout(root))
    assert module == wasm
    # the value printed for WasmPlugin.sha256 is the manifest digest, not the .wasm's hash
    printed = re.search(r"^\s*sha256: ([0-9a-f]{64})$", stdout, re.M)
    assert printed, stdout
    assert printed.group(1) == digest
    assert digest != hashlib.sha256(wasm).hexdigest()
    assert f"manifest digest:  sha256:{digest}" in stdout


def test_builds_are_reproducible(built):
    (a, a_tar, a_out), (b, b_tar, b_out) = built
    ia, ib = Layout(a).json("index.json"), Layout(b).json("index.json")
    assert ia == ib
    assert ia["manifests"][0]["digest"] == ib["manifests"][0]["digest"]
    files = lambda root: {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert files(a) == files(b)
    assert a_tar.read_bytes() == b_tar.read_bytes()
    assert a_out.replace(str(a), "X").replace(str(a_tar), "Y") == b_out.replace(str(b), "X").replace(str(b_tar), "Y")


def test_archive_holds_the_layout(built):
    root, archive, _ = built[0]
    with tarfile.open(archive) as tar:
        names = {m.name.rstrip("/"): m for m in tar.getmembers()}
        assert {"oci-layout", "index.json", "blobs", "blobs/sha256"} <= set(names)
        for p in root.rglob("*"):
            rel = str(p.relative_to(root))
            assert rel in names, rel
            if p.is_file():
                assert tar.extractfile(names[rel]).read() == p.read_bytes()
        assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in names.values())


def test_rebuild_replaces_the_layout_and_refuses_other_directories(wasm, tmp_path):
    layout = tmp_path / "layout"
    assert run(h.find_wasm(), str(layout), TAG).returncode == 0
    (layout / "blobs" / "sha256" / ("0" * 64)).write_bytes(b"stale")
    assert run(h.find_wasm(), str(layout), "0.2.0").returncode == 0
    assert not (layout / "blobs" / "sha256" / ("0" * 64)).exists()
    assert Layout(layout).json("index.json")["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "0.2.0"
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    r = run(h.find_wasm(), str(other), TAG)
    assert r.returncode == 1 and "not an OCI image layout" in r.stderr
    assert (other / "keep.txt").read_text() == "mine"


def test_refuses_bad_input(tmp_path):
    not_wasm = tmp_path / "x.wasm"
    not_wasm.write_bytes(b"#!/bin/sh\n")
    r = run(str(not_wasm), str(tmp_path / "a"), TAG)
    assert r.returncode == 1 and "not a WebAssembly binary" in r.stderr
    r = run(h.find_wasm(), str(tmp_path / "b"), "bad tag!")
    assert r.returncode == 1 and "invalid tag" in r.stderr
