"""Files: an upload never becomes a page in the studio's origin, the workspace is never served
wholesale, and file routes follow no symlink."""

from __future__ import annotations

import os

import httpx

from app.access import Principal

from .conftest import headers

WAN = {"engine": "wan2.1-t2v-1.3b", "prompt": "剑仙",
       "params": {"width": 16, "height": 16, "num_frames": 5, "num_inference_steps": 2}}


def upload(api, key: str, name: str, data: bytes, ctype: str) -> str:
    r = httpx.post(f"{api.base}/gradio_api/upload", headers=headers(key), files={"files": (name, data, ctype)})
    assert r.status_code == 200, r.text
    return r.json()[0]


def test_uploaded_html_and_svg_are_downloads_not_pages(shared):
    page = b"<html><script>fetch('/gradio_api/queue/join')</script></html>"
    svg = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"
    for name, data, ctype in (("x.html", page, "text/html"), ("x.svg", svg, "image/svg+xml")):
        path = upload(shared, shared.keys["bob"], name, data, ctype)
        r = httpx.get(f"{shared.base}/gradio_api/file={path}", headers=headers(shared.keys["root"]))
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/octet-stream"
        assert r.headers["content-disposition"].startswith("attachment")
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in r.headers["content-security-policy"]


def test_pages_carry_a_content_security_policy(shared):
    r = httpx.get(f"{shared.base}/", headers={**headers(shared.keys["alice"]), "Accept": "text/html"})
    assert r.status_code == 200 and "frame-ancestors 'self'" in r.headers["content-security-policy"]
    assert "object-src 'none'" in r.headers["content-security-policy"]


def test_workspace_files_are_not_served_through_gradio(shared):
    ws = shared.studio.settings.workspace
    job = shared.studio.service.submit(WAN, Principal(user="alice"))
    done = shared.wait(job.id)
    assert done.status == "succeeded", done.error
    targets = [ws / "studio.db", ws / "studio.db-wal", ws / "config.yaml", ws / done.outputs[0]["file"],
               shared.studio.secrets.path, ws / ".." / ".." / "etc" / "passwd", "/etc/passwd"]
    for target in targets:
        for key in (shared.keys["bob"], shared.keys["root"]):
            r = httpx.get(f"{shared.base}/gradio_api/file={target}", headers=headers(key))
            assert r.status_code == 404, (target, r.status_code)
    # the owner's own route works; the other user's gets "not found"
    name = done.outputs[0]["file"].rsplit("/", 1)[-1]
    assert httpx.get(f"{shared.base}/files/{job.id}/{name}", headers=headers(shared.keys["alice"])).status_code == 200
    assert httpx.get(f"{shared.base}/files/{job.id}/{name}", headers=headers(shared.keys["bob"])).status_code == 404


def test_file_routes_follow_no_symlink(shared):
    ws = shared.studio.settings.workspace
    job = shared.studio.service.submit(WAN, Principal(user="bob"))
    done = shared.wait(job.id)
    out = ws / done.outputs[0]["file"]
    out.unlink()
    os.symlink("/etc/passwd", out)  # bob (or anything that writes into outputs/) plants a link
    name = out.name
    r = httpx.get(f"{shared.base}/files/{job.id}/{name}", headers=headers(shared.keys["bob"]))
    assert r.status_code == 404 and b"root:" not in r.content
    r = httpx.get(f"{shared.base}/videos/{job.id}.mp4", headers=headers(shared.keys["bob"]))
    assert r.status_code == 404 and b"root:" not in r.content


def test_uploads_have_a_size_limit_and_old_ones_are_swept(make_api, monkeypatch):
    import time

    import app.server
    from tests.api.conftest import serve

    monkeypatch.setattr(app.server, "MAX_UPLOAD_BYTES", 1 * 2**20)
    api = make_api(rest={"auth": "required"}, keys={"bob": False})
    with serve(api.app) as base:
        r = httpx.post(f"{base}/gradio_api/upload", headers=headers(api.keys["bob"]),
                       files={"files": ("big.png", b"\0" * (2 * 2**20), "image/png")})
        assert r.status_code == 413
        path = httpx.post(f"{base}/gradio_api/upload", headers=headers(api.keys["bob"]),
                          files={"files": ("small.txt", b"hello", "text/plain")}).json()[0]
    old = time.time() - 3 * 86400
    os.utime(path, (old, old))
    assert api.studio.ops.sweeper.sweep_upload_cache() >= 1
    assert not os.path.exists(path)
