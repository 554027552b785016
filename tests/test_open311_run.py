"""End to end: a video-analytics system gets a key from `youhu apikey create`,
then — as a separate program speaking HTTP — raises a call against a running
`youhu run`, with a snapshot on its own image server; the water department
liaison's alert, with the snapshot and the system's name, arrives in the fake
Bot API. Then the system reads the call back, retries the event (same call),
and the key is listed and revoked on the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from bot.cli import main
from tests.conftest import JPEG
from tests.fakes.telegram_api import FakeTelegram
from workflows.context import Context
from workflows.directory import load
from workflows.orgfile import read_catalog, read_org

ROOT = Path(__file__).resolve().parent.parent
LIAISON = 700000201  # 何文斌 (区水务局)


class _Snapshots(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(JPEG)))
        self.end_headers()
        self.wfile.write(JPEG)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def image_server() -> Iterator[str]:
    """The video-analytics system's own snapshot server, on loopback."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Snapshots)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_a_video_analytics_system_raises_a_call_and_the_water_liaison_is_alerted(
    ctx: Context, db_url: str, tmp_path: Path, unused_port: int, image_server: str
) -> None:
    org = read_org(ROOT / "examples" / "org.yaml")
    load(ctx.engine, org, read_catalog(ROOT / "examples" / "catalog.yaml", org),
         datetime.now(UTC))
    with FakeTelegram() as tg:
        env = {**os.environ, "YOUHU_DATABASE__URL": db_url,
               "YOUHU_TELEGRAM__TOKEN": tg.token, "YOUHU_TELEGRAM__BASE_URL": tg.base_url,
               "YOUHU_TELEGRAM__BASE_FILE_URL": tg.base_file_url,
               "YOUHU_MEDIA__DIR": str(tmp_path / "media"),
               "YOUHU_OPEN311__ENABLED": "true", "YOUHU_HTTP__PORT": str(unused_port),
               # The system's snapshot server is on loopback, like a camera
               # platform on the district's own network.
               "YOUHU_OPEN311__MEDIA_PRIVATE_ADDRESSES": "true",
               "YOUHU_SCHEDULER__DELIVER_SECONDS": "0.3"}
        env.pop("YOUHU_CONFIG", None)
        created = _cli(env, "apikey", "create", "--name", "video-analytics",
                       "--unit", "taihe-helong", "--items", "drainage-blockage,street-occupation")
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip().splitlines()[-1]
        assert len(key) >= 40
        process = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], cwd=ROOT, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        base = f"http://127.0.0.1:{unused_port}/open311/v2"
        try:
            with httpx.Client(timeout=10) as system:
                for _ in range(600):  # until the server listens (a safety net of 60 s)
                    try:
                        system.get(f"{base}/services.json")
                        break
                    except httpx.TransportError:
                        time.sleep(0.1)
                event = {"api_key": key, "service_code": "drainage-blockage",
                         "lat": "23.2871", "long": "113.3592",
                         "address_string": "和龙村文化广场东侧雨水口",
                         "description": "视频分析：雨水口被垃圾堵塞，路面积水",
                         "media_url": f"{image_server}/snapshots/cam-17/0001.jpg",
                         "external_id": "cam-17:0001"}
                raised = system.post(f"{base}/requests.json", data=event)
                assert raised.status_code == 201, raised.text
                number = raised.json()[0]["service_request_id"]

                def alerted() -> bool:
                    return any(number in (m.caption or m.text or "")
                               for m in tg.messages_to(LIAISON))

                tg.wait_until(alerted, timeout=60)
                retried = system.post(f"{base}/requests.json", data=event)
                assert retried.status_code == 200
                assert retried.json()[0]["service_request_id"] == number
                shown = system.get(f"{base}/requests/{number}.json",
                                   headers={"X-Api-Key": key}).json()[0]
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=60)
        alert = next(m for m in tg.messages_to(LIAISON) if number in (m.caption or m.text or ""))
        photos = [tg.file_bytes(p) if isinstance(p, str) else p for p in alert.photos]
    assert process.returncode == 0, output
    assert "youhu is running: telegram, open311" in output and "Traceback" not in output
    card = alert.caption or alert.text or ""
    assert "来源系统：video-analytics" in card and "雨水口被垃圾堵塞" in card
    assert photos == [JPEG]
    assert shown["status"] == "open" and shown["agency_responsible"] == "区水务局"
    assert shown["media_url"] == event["media_url"]
    listed = _cli(env, "apikey", "list")
    assert "video-analytics" in listed.stdout and key not in listed.stdout
    assert _cli(env, "apikey", "revoke", "--name", "video-analytics").returncode == 0
    assert "revoked" in _cli(env, "apikey", "list").stdout


def test_apikey_commands_refuse_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("YOUHU_DATABASE__URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.delenv("YOUHU_CONFIG", raising=False)
    assert main(["init", "--org", str(ROOT / "examples" / "org.yaml"), "--catalog",
                 str(ROOT / "examples" / "catalog.yaml")]) == 0
    assert main(["apikey", "create", "--name", "sensors", "--unit", "water"]) == 1
    assert "no town, street or village" in capsys.readouterr().err
    assert main(["apikey", "create", "--name", "sensors", "--unit", "taihe",
                 "--items", "nope"]) == 1
    assert "no catalog item nope" in capsys.readouterr().err
    assert main(["apikey", "create", "--name", "sensors", "--unit", "taihe"]) == 0
    assert main(["apikey", "create", "--name", "sensors", "--unit", "taihe"]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["apikey", "revoke", "--name", "nobody"]) == 1
    assert main(["apikey", "revoke", "--name", "sensors"]) == 0
    assert main(["apikey", "revoke", "--name", "sensors"]) == 1
    assert "already revoked" in capsys.readouterr().err
