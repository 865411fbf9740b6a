"""Kafka transport security: one mapping from ``KafkaSettings`` to what every client needs.

Every Kafka client in llmops (the services' FastStream broker, the SDK, the CLI, topic creation,
the lag probe, topic readers) gets its security arguments from ``client_security_kwargs``, so a
setting means the same thing everywhere. ``check_broker_access`` turns a refused login into one
clear ``BrokerAuthError`` instead of aiokafka's generic "Unable to bootstrap" (and its retries).

Example:
    >>> kwargs = client_security_kwargs(KafkaSettings(security_protocol="SASL_SSL", ...))
    >>> producer = AIOKafkaProducer(bootstrap_servers=..., **kwargs)

"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import (
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.helpers import create_ssl_context
from aiokafka.protocol.metadata import MetadataRequest
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from shared.runtime.settings import KafkaSettings

__all__ = ["BrokerAuthError", "check_broker_access", "client_security_kwargs", "faststream_security"]

_AUTH_ERRORS = (SaslAuthenticationFailed, UnsupportedSaslMechanismError, IllegalSaslStateError)


class BrokerAuthError(Exception):
    """The broker refused this client's credentials or certificate; retrying cannot help."""


def _ssl_context(settings: KafkaSettings) -> ssl.SSLContext:
    password = settings.ssl_key_password.get_secret_value() if settings.ssl_key_password else None
    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=settings.ssl_cafile,
            certfile=settings.ssl_certfile,
            keyfile=settings.ssl_keyfile,
            password=password,
        )
    except (OSError, ssl.SSLError) as exc:
        # Paths are named, never the key password.
        msg = (
            f"cannot load Kafka TLS files (ca={settings.ssl_cafile}, cert={settings.ssl_certfile}, "
            f"key={settings.ssl_keyfile}): {type(exc).__name__}: {getattr(exc, 'strerror', None) or exc.args[0]}"
        )
        raise BrokerAuthError(msg) from None
    return context


def client_security_kwargs(settings: KafkaSettings) -> dict[str, Any]:
    """The aiokafka keyword arguments (producer, consumer, admin client) for the settings' security mode.

    ``security_protocol`` and ``ssl_context`` always (the context is None without TLS; with it,
    the CA file, else the system CAs, and the client certificate and key for mTLS); the SASL
    mechanism and credentials for SASL_PLAINTEXT and SASL_SSL.
    """
    tls = settings.security_protocol in {"SSL", "SASL_SSL"}
    kwargs: dict[str, Any] = {
        "security_protocol": settings.security_protocol,
        "ssl_context": _ssl_context(settings) if tls else None,
    }
    if settings.security_protocol.startswith("SASL_"):
        assert settings.sasl_password is not None  # noqa: S101 - KafkaSettings refuses SASL without one
        kwargs["sasl_mechanism"] = settings.sasl_mechanism
        kwargs["sasl_plain_username"] = settings.sasl_username
        kwargs["sasl_plain_password"] = settings.sasl_password.get_secret_value()
    return kwargs


def faststream_security(settings: KafkaSettings) -> BaseSecurity | None:
    """The same mapping as a FastStream security object (``KafkaBroker(security=...)``)."""
    kwargs = client_security_kwargs(settings)
    ssl_context = kwargs.get("ssl_context")
    mechanism = kwargs.get("sasl_mechanism")
    if mechanism is None:
        return BaseSecurity(ssl_context=ssl_context) if ssl_context is not None else None
    cls = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}[mechanism]
    return cls(
        username=kwargs["sasl_plain_username"],
        password=kwargs["sasl_plain_password"],
        ssl_context=ssl_context,
        use_ssl=settings.security_protocol == "SASL_SSL",
    )


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port or 9092)


class _UnreachableError(Exception):
    """The broker did not answer at all: not an auth failure."""


async def _speaks_tls(host: str, port: int, timeout_s: float) -> bool:
    """Whether a TLS handshake succeeds on ``host:port`` (any certificate: only the protocol is asked)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=context), timeout_s)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def _login(host: str, port: int, settings: KafkaSettings, kwargs: dict[str, Any], timeout_s: float) -> str | None:
    """Why the broker at ``host:port`` refused this client, or None when it answered a metadata request."""
    tls = settings.security_protocol in {"SSL", "SASL_SSL"}
    try:
        reason = await _login_once(host, port, settings, kwargs, timeout_s)
    except _UnreachableError:
        reason = _NO_ANSWER
    if reason != _NO_ANSWER:
        return reason
    if not tls and await _speaks_tls(host, port, timeout_s):
        # A TLS listener takes a plaintext request for a broken handshake: the client would only see it drop or
        # time out, and retry forever, as if the broker were away.
        return f"is a TLS listener: this client is configured for {settings.security_protocol}"
    raise _UnreachableError


#: ``_login_once``'s answer when the connection was accepted but nothing came back in time.
_NO_ANSWER = "no answer"


async def _login_once(
    host: str, port: int, settings: KafkaSettings, kwargs: dict[str, Any], timeout_s: float
) -> str | None:
    """``_login``'s attempt: a refusal's reason, None when served, ``_NO_ANSWER`` when accepted but never served."""
    conn = await _connect(host, port, settings, kwargs, timeout_s)
    if isinstance(conn, str):
        return conn
    try:
        await asyncio.wait_for(conn.send(MetadataRequest([])), timeout_s)
    except KafkaConnectionError:
        return "closed the connection on a metadata request: it requires authentication this client did not give"
    except TimeoutError:
        return _NO_ANSWER
    except KafkaError as exc:
        raise _UnreachableError from exc
    finally:
        conn.close()
    return None


async def _connect(host: str, port: int, settings: KafkaSettings, kwargs: dict[str, Any], timeout_s: float) -> Any:
    """A connection that passed TLS and SASL, or the reason it did not (``_NO_ANSWER`` when nothing answered)."""
    sasl = settings.security_protocol.startswith("SASL_")
    try:
        return await asyncio.wait_for(
            create_conn(host, port, client_id=f"{settings.client_id}-auth-check", **kwargs), timeout_s
        )
    except _AUTH_ERRORS as exc:
        return f"refused the credentials: {type(exc).__name__}"
    except ssl.SSLError as exc:
        return f"failed the TLS handshake: {exc.reason or type(exc).__name__}"
    except KafkaConnectionError as exc:
        if sasl and "closed" in str(exc):
            # Accepted the TCP connection, then dropped it during the SASL exchange.
            return "closed the connection during SASL authentication (mechanism, user or password refused)"
        raise _UnreachableError from exc
    except (KeyError, ValueError) as exc:
        if sasl:  # aiokafka's SCRAM client fails this way when the server-final message carries an error
            return "refused the SCRAM exchange (unknown user or wrong password)"
        raise _UnreachableError from exc
    except TimeoutError:
        return _NO_ANSWER
    except (OSError, KafkaError) as exc:
        raise _UnreachableError from exc


async def check_broker_access(
    settings: KafkaSettings, *, timeout_s: float = 10.0, confirm_after_s: float = 1.0
) -> None:
    """Log in to the first bootstrap broker that answers; raise ``BrokerAuthError`` if it refuses us.

    An unreachable broker is not an auth failure: it is left to the client's own start (and the
    supervisor's restarts). A refusal is confirmed once after ``confirm_after_s`` (a broker that
    closed connections while stopping is not taken for one), then reported once: retrying a
    refused password or certificate cannot help.
    """
    kwargs = client_security_kwargs(settings)
    for address in settings.bootstrap.split(","):
        host, port = _host_port(address)
        try:
            reason = await _login(host, port, settings, kwargs, timeout_s)
            if reason is not None:
                await asyncio.sleep(confirm_after_s)
                reason = await _login(host, port, settings, kwargs, timeout_s)
        except _UnreachableError:
            continue  # try the next one; the client's own start reports it if none answers
        if reason is None:
            return
        user = f"user {settings.sasl_username!r} via {settings.sasl_mechanism}, " if settings.sasl_mechanism else ""
        msg = f"Kafka broker {host}:{port} {reason} ({user}security_protocol {settings.security_protocol})"
        raise BrokerAuthError(msg)
