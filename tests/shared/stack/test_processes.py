import contextlib
import os
import signal
import subprocess
import sys
import time

from shared.stack.processes import spawn, stop_process


class TestProcesses:
    def test_stop_process_escalates_to_kill(self) -> None:
        """A child that ignores SIGTERM is killed after the timeout."""
        code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
        proc = spawn([sys.executable, "-c", code], env=dict(os.environ))
        time.sleep(0.5)
        assert stop_process(proc, timeout=0.5) == -signal.SIGKILL

    def test_children_die_with_the_parent(self) -> None:
        """A grandchild started by spawn() gets SIGTERM when its parent is killed with SIGKILL."""
        script = (
            "import os, sys, time\n"
            "from shared.stack.processes import spawn\n"
            "child = spawn([sys.executable, '-c', 'import time; time.sleep(60)'], env=dict(os.environ))\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(60)\n"
        )
        parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=dict(os.environ))
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        parent.kill()
        parent.wait()
        for _ in range(50):
            try:
                os.kill(child_pid, 0)
            except ProcessLookupError:
                break
            with contextlib.suppress(ChildProcessError):
                os.waitpid(child_pid, os.WNOHANG)
            time.sleep(0.1)
        else:
            os.kill(child_pid, signal.SIGKILL)
            raise AssertionError("the grandchild outlived its parent")
