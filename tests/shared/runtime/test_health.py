from shared.runtime.health import HealthServer
from shared.stack.processes import http_status


class TestHealthServer:
    async def test_ready_only_after_flag(self) -> None:
        """Liveness answers at once; readiness only once ready is set."""
        server = HealthServer("127.0.0.1", 0, stage="demo")
        await server.start()
        try:
            assert await http_status("127.0.0.1", server.port, "/livez") == 200
            assert await http_status("127.0.0.1", server.port, "/readyz") == 503
            server.ready = True
            assert await http_status("127.0.0.1", server.port, "/readyz") == 200
            assert await http_status("127.0.0.1", server.port, "/nope") == 404
        finally:
            await server.stop()
