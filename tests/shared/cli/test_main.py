import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shared.stack.embedded import free_port

pytestmark = pytest.mark.e2e


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class TestCli:
    @pytest.mark.parametrize("broker", ["tansu", "kafka"])
    def test_up_ask_and_clean_stop(self, models_dir: Path, tmp_path: Path, broker: str) -> None:
        """`llmops up [--broker kafka]` starts broker and services, `llmops ask --json` gets an answer, SIGTERM leaves
        no process behind.

        `llmops ask` runs with the default settings (an idempotent producer): against Tansu, which refuses that
        handshake, the client goes on without it.
        """
        env = dict(os.environ)
        env |= {
            "LLMOPS_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
            "LLMOPS_DEFAULT_MODEL": "gemma-3-270m",
            "LLMOPS_DATA_DIR": str(models_dir.parent),
            "LLMOPS_GATEWAY_PORT": str(gateway_port := free_port()),
        }
        for name in ("LLMOPS_GATEWAY_AUTH", "LLMOPS_GATEWAY_AUTH_FILE"):
            env.pop(name, None)
        llmops = str(Path(sys.executable).parent / "llmops")
        log = (tmp_path / "up.log").open("wb")
        up = subprocess.Popen([llmops, "up", "--broker", broker], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 180
            while b"press Ctrl-C" not in (tmp_path / "up.log").read_bytes():
                assert up.poll() is None, (tmp_path / "up.log").read_text()
                assert time.monotonic() < deadline, "stack not ready in time"
                time.sleep(0.5)
            children = _children(up.pid)
            assert len(children) == 7  # the broker (tansu or java), five services and the gateway
            out = (tmp_path / "up.log").read_text()
            assert ("Apache Kafka" if broker == "kafka" else "embedded Tansu") in out
            assert f"gateway: http://127.0.0.1:{gateway_port}" in out
            key = re.search(r"dev API key: (\S+)", out)
            assert key is not None
            models = httpx.get(
                f"http://127.0.0.1:{gateway_port}/v1/models",
                headers={"Authorization": f"Bearer {key.group(1)}"},
                timeout=10,
            )
            assert "gemma-3-270m" in {m["id"] for m in models.json()["data"]}

            ask = subprocess.run(
                [llmops, "ask", "--json", "--max-tokens", "4", "Say hi."],
                env=env,
                capture_output=True,
                timeout=120,
                check=False,
            )
            assert ask.returncode == 0, ask.stderr.decode()
            answer = json.loads(ask.stdout)
            assert [t["stage"] for t in answer["trail"]] == [
                "preprocess",
                "grounding",
                "safety",
                "inference",
                "postprocess",
            ]
            assert answer["completion"]["model"] == "gemma-3-270m"
            assert answer["prepared"]["embedding"] is None

            up.send_signal(signal.SIGTERM)
            assert up.wait(timeout=60) == 0
            assert not [pid for pid in children if _alive(pid)]
        finally:
            if up.poll() is None:
                up.kill()
            log.close()
