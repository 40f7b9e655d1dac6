"""The collector's MQTT 5 client against a real Mosquitto: sessions, reconnects, the Last Will,
TLS and keepalive."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from collector.mqtt import BrokerAddress, InboundMessage, Will
from protocol.backoff import Backoff
from protocol.clock import ManualClock
from simulators.broker import MosquittoBroker
from tests.helpers import eventually
from tests.mqtt_support import (
    TIMEOUT,
    Inbox,
    advance_until,
    connection,
    fast_backoff,
    mosquitto_pub,
    running,
    stopped,
)

# --- sessions and reconnects ------------------------------------------------------------------


async def test_persistent_session_delivers_what_was_published_while_away(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    first_inbox = Inbox()
    async with running(connection(broker, first_inbox, client_id="collector-1")):
        pass  # subscribed once, then a clean DISCONNECT; the session stays on the broker
    lines = tmp_path / "away.txt"
    lines.write_text("".join(f"away-{i}\n" for i in range(50)))
    await mosquitto_pub(broker, "t/away", qos=1, lines=lines)

    inbox = Inbox()
    sessions: list[bool] = []
    conn = connection(broker, inbox, client_id="collector-1", on_connected=sessions.append)
    async with running(conn):
        await inbox.wait_for(50)
        assert sessions == [True]
    assert inbox.payloads == [f"away-{i}".encode() for i in range(50)]
    assert first_inbox.messages == []


async def test_clean_start_discards_the_session(broker: MosquittoBroker) -> None:
    async with running(connection(broker, Inbox(), client_id="c-1")):
        pass
    await mosquitto_pub(broker, "t/away", "lost", qos=1)
    sessions: list[bool] = []
    inbox = Inbox()
    conn = connection(
        broker, inbox, client_id="c-1", clean_start=True, on_connected=sessions.append
    )
    async with running(conn):
        await mosquitto_pub(broker, "t/now", "live", qos=1)
        await inbox.wait_for(1)
    assert sessions == [False]
    assert inbox.payloads == [b"live"]


async def test_broker_restart_reconnects_resubscribes_and_receives(
    broker: MosquittoBroker,
) -> None:
    inbox = Inbox()
    sessions: list[bool] = []
    downs: list[None] = []
    backoff = fast_backoff()
    conn = connection(
        broker,
        inbox,
        on_connected=sessions.append,
        on_disconnected=lambda: downs.append(None),
        backoff=backoff,
    )
    async with running(conn):
        await mosquitto_pub(broker, "t/before", "1", qos=1)
        await inbox.wait_for(1)
        await asyncio.to_thread(broker.restart)  # persistence off: the session is gone
        await eventually(lambda: conn.stats.connects == 2 and conn.is_connected, what="reconnect")
        assert backoff.attempt == 0  # reset by the successful CONNACK
        await mosquitto_pub(broker, "t/after", "2", qos=1)
        await inbox.wait_for(2)
    assert inbox.payloads == [b"1", b"2"]
    assert sessions == [False, False]  # subscribed again although the broker forgot us
    assert len(downs) == 2  # the restart, then the close


async def test_session_taken_over_drops_the_old_connection(
    broker: MosquittoBroker, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()  # the first client's backoff waits until we move this clock
    first = connection(broker, Inbox(), client_id="same-id", clock=clock)
    second = connection(broker, Inbox(), client_id="same-id")
    with caplog.at_level(logging.WARNING, logger="collector.mqtt.client"):
        async with running(first):
            async with running(second):
                await eventually(lambda: not first.is_connected, what="takeover")
                assert first.stats.disconnects == 1
                assert second.is_connected
            await advance_until(clock, lambda: first.is_connected, "reconnect")
            assert first.stats.connects == 2
    # Mosquitto 2.0.11 just closes the old socket; it does not send DISCONNECT 0x8E.
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("mqtt.connection_lost name=same-id") for m in messages)


async def test_connect_refused_then_credentials_from_url(tmp_path: Path) -> None:
    passwords = tmp_path / "passwords"
    process = await asyncio.create_subprocess_exec(
        "mosquitto_passwd", "-b", "-c", str(passwords), "collector", "s3cret:x"
    )
    assert await process.wait() == 0
    config = ("allow_anonymous false", f"password_file {passwords}")
    with MosquittoBroker(tmp_path / "broker", extra_config=config) as broker:
        backoff = Backoff(initial=60.0, maximum=60.0)
        anonymous = connection(broker, Inbox(), client_id="anon", backoff=backoff)
        async with running(anonymous, connected=False):
            await eventually(lambda: backoff.attempt == 1, what="backoff after refusal")
            assert not anonymous.is_connected
            assert anonymous.stats.connects == 0
        url = f"mqtt://collector:s3cret%3Ax@{broker.host}:{broker.port}"
        inbox = Inbox()
        async with running(connection(broker, inbox, client_id="auth", url=url)):
            await mosquitto_pub_auth(broker, "t/auth", "ok")
            await inbox.wait_for(1)
        assert inbox.payloads == [b"ok"]


async def mosquitto_pub_auth(broker: MosquittoBroker, topic: str, message: str) -> None:
    process = await asyncio.create_subprocess_exec(
        "mosquitto_pub",
        "-h",
        broker.host,
        "-p",
        str(broker.port),
        "-u",
        "collector",
        "-P",
        "s3cret:x",
        "-t",
        topic,
        "-m",
        message,
        "-q",
        "1",
    )
    assert await asyncio.wait_for(process.wait(), TIMEOUT) == 0


async def test_will_is_published_on_abrupt_loss_but_not_on_close(broker: MosquittoBroker) -> None:
    observer_inbox = Inbox()
    observer = connection(broker, observer_inbox, client_id="observer", subscriptions=(("w/#", 1),))
    will = Will("w/agent/status", b"offline", qos=1)
    async with running(observer):
        polite = connection(broker, Inbox(), client_id="polite", subscriptions=(), will=will)
        async with running(polite):
            pass
        await mosquitto_pub(broker, "w/marker", "after close", qos=1)
        await observer_inbox.wait_for(1)
        assert observer_inbox.payloads == [b"after close"]  # no Last Will before the marker

        abrupt = connection(broker, Inbox(), client_id="abrupt", subscriptions=(), will=will)
        task = asyncio.create_task(abrupt.run())
        await asyncio.wait_for(abrupt.wait_connected(), TIMEOUT)
        task.cancel()  # cancellation closes the socket without DISCONNECT
        with pytest.raises(asyncio.CancelledError):
            await task
        await observer_inbox.wait_for(2)
        assert observer_inbox.messages[1] == InboundMessage("w/agent/status", b"offline", 1, False)


async def run_command(*argv: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    assert await asyncio.wait_for(process.wait(), 60) == 0, argv


async def _make_pki(directory: Path) -> dict[str, Path]:
    """A CA, the broker's certificate (for 127.0.0.1) and a client certificate, with openssl."""
    files = {name: directory / name for name in (
        "ca.key", "ca.crt", "server.key", "server.csr", "server.crt",
        "client.key", "client.csr", "client.crt", "server.cnf",
    )}  # fmt: skip
    files["server.cnf"].write_text("subjectAltName=IP:127.0.0.1\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    await run_command("openssl", "req", "-x509", *ec, "-keyout", str(files["ca.key"]),
                      "-out", str(files["ca.crt"]), "-days", "1", "-subj", "/CN=Custos test CA")  # fmt: skip
    for who, subject in (("server", "/CN=127.0.0.1"), ("client", "/CN=custos-collector")):
        await run_command("openssl", "req", *ec, "-keyout", str(files[f"{who}.key"]),
                          "-out", str(files[f"{who}.csr"]), "-subj", subject)  # fmt: skip
        extra = ["-extfile", str(files["server.cnf"])] if who == "server" else []
        await run_command("openssl", "x509", "-req", "-in", str(files[f"{who}.csr"]),
                          "-CA", str(files["ca.crt"]), "-CAkey", str(files["ca.key"]),
                          "-CAcreateserial", "-out", str(files[f"{who}.crt"]), "-days", "1",
                          *extra)  # fmt: skip
    return files


def _tls_broker(directory: Path, pki: dict[str, Path], *extra: str) -> MosquittoBroker:
    tls = (
        f"cafile {pki['ca.crt']}",
        f"certfile {pki['server.crt']}",
        f"keyfile {pki['server.key']}",
    )
    return MosquittoBroker(directory, extra_config=(*tls, *extra))


async def test_mqtts_verifies_the_broker_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki = await _make_pki(tmp_path)
    with _tls_broker(tmp_path / "broker", pki) as broker:
        url = f"mqtts://{broker.host}:{broker.port}"
        assert BrokerAddress.parse(url).tls
        # The system CAs do not know our test CA: the handshake fails and the client retries.
        backoff = Backoff(initial=60.0, maximum=60.0)
        untrusting = connection(broker, Inbox(), client_id="untrusting", url=url, backoff=backoff)
        async with running(untrusting, connected=False):
            await eventually(lambda: backoff.attempt == 1, what="failed TLS handshake")
            assert untrusting.stats.connects == 0
        # OpenSSL reads SSL_CERT_FILE when ssl.create_default_context() loads the default CAs.
        monkeypatch.setenv("SSL_CERT_FILE", str(pki["ca.crt"]))
        inbox = Inbox()
        trusting = connection(broker, inbox, client_id="trusting", url=url)
        async with running(trusting):
            await asyncio.wait_for(trusting.publish("t/tls", b"secret", qos=1), TIMEOUT)
            await inbox.wait_for(1)
        assert inbox.messages == [InboundMessage("t/tls", b"secret", 1, False)]


async def test_mqtts_with_the_site_ca_and_a_client_certificate(tmp_path: Path) -> None:
    pki = await _make_pki(tmp_path)
    required = ("require_certificate true", "use_identity_as_username true")
    with _tls_broker(tmp_path / "broker", pki, *required) as broker:
        site = BrokerAddress.parse(f"mqtts://{broker.host}:{broker.port}")
        with_ca = site.with_tls_files(ca_file=pki["ca.crt"])
        # A broker that demands a client certificate refuses a client without one.
        backoff = Backoff(initial=60.0, maximum=60.0)
        anonymous = connection(broker, Inbox(), client_id="anon", address=with_ca, backoff=backoff)
        async with running(anonymous, connected=False):
            await eventually(lambda: backoff.attempt == 1, what="refused without a certificate")
            assert anonymous.stats.connects == 0
        # The broker's certificate must name the host we asked for.
        misnamed = with_ca.with_tls_files(
            ca_file=pki["ca.crt"],
            cert_file=pki["client.crt"],
            key_file=pki["client.key"],
            server_name="broker.example",
        )
        backoff = Backoff(initial=60.0, maximum=60.0)
        fooled = connection(broker, Inbox(), client_id="fooled", address=misnamed, backoff=backoff)
        async with running(fooled, connected=False):
            await eventually(lambda: backoff.attempt == 1, what="name mismatch refused")
            assert fooled.stats.connects == 0
        identified = site.with_tls_files(
            ca_file=pki["ca.crt"], cert_file=pki["client.crt"], key_file=pki["client.key"]
        )
        inbox = Inbox()
        collector = connection(broker, inbox, client_id="custos-collector", address=identified)
        async with running(collector):
            await asyncio.wait_for(collector.publish("t/tls", b"signed", qos=1), TIMEOUT)
            await inbox.wait_for(1)
        assert inbox.payloads == [b"signed"]


def test_tls_files_need_mqtts_and_a_certificate_needs_its_key(tmp_path: Path) -> None:
    plain = BrokerAddress.parse("mqtt://127.0.0.1:1883")
    with pytest.raises(ValueError, match="need mqtts"):
        plain.with_tls_files(ca_file=tmp_path / "ca.crt")
    with pytest.raises(ValueError, match="needs its key"):
        BrokerAddress.parse("mqtts://127.0.0.1").with_tls_files(cert_file=tmp_path / "c.crt")


# --- keepalive --------------------------------------------------------------------------------


async def test_keepalive_pings_when_idle_and_stays_connected(broker: MosquittoBroker) -> None:
    clock = ManualClock()
    conn = connection(broker, Inbox(), clock=clock, keepalive_s=10)
    async with running(conn):
        await clock.advance(9.9)
        assert conn.stats.pings_sent == 0
        received = conn.stats.bytes_received
        await clock.advance(0.2)
        assert conn.stats.pings_sent == 1
        await eventually(lambda: conn.stats.bytes_received == received + 2, what="PINGRESP")
        for _ in range(5):  # an idle minute: a ping every 10 s, each answered
            await clock.advance(10.0)
            expected = received + 2 * conn.stats.pings_sent
            await eventually(lambda: conn.stats.bytes_received == expected, what="PINGRESP")  # noqa: B023
        assert conn.stats.pings_sent == 6
        assert conn.is_connected
        assert conn.stats.connects == 1


async def test_server_keep_alive_overrides_ours(tmp_path: Path) -> None:
    with MosquittoBroker(tmp_path / "broker", extra_config=("max_keepalive 10",)) as broker:
        clock = ManualClock()
        conn = connection(broker, Inbox(), clock=clock, keepalive_s=60)
        async with running(conn):
            await clock.advance(10.1)
            assert conn.stats.pings_sent == 1


async def test_broker_enforces_keepalive_and_our_pings_satisfy_it(broker: MosquittoBroker) -> None:
    # Mosquitto drops a client silent for 1.5 x keepalive (checked coarsely: about 6 s for a
    # keepalive of 1 s). A client whose clock never moves sends no PINGREQ and is dropped; one
    # whose clock follows real time is kept.
    frozen_clock = ManualClock()
    silent = connection(broker, Inbox(), client_id="silent", clock=frozen_clock, keepalive_s=1)
    clock = ManualClock()
    pinging = connection(broker, Inbox(), client_id="pinging", clock=clock, keepalive_s=1)
    async with running(silent), running(pinging):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20.0
        while silent.stats.disconnects == 0:
            assert loop.time() < deadline, "Mosquitto never dropped the silent client"
            await asyncio.sleep(0.25)
            await clock.advance(0.25)
        assert pinging.is_connected
        assert pinging.stats.disconnects == 0
        assert pinging.stats.pings_sent >= 3


async def test_unanswered_ping_drops_the_connection_and_reconnects(
    broker: MosquittoBroker, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    downs: list[None] = []
    conn = connection(
        broker, Inbox(), clock=clock, keepalive_s=10, on_disconnected=lambda: downs.append(None)
    )
    with caplog.at_level(logging.WARNING, logger="collector.mqtt.client"):
        async with running(conn):
            with stopped(broker):
                await clock.advance(10.0)
                assert conn.stats.pings_sent == 1
                await clock.advance(14.9)  # 1.5 x keepalive after the PINGREQ is not over yet
                assert conn.is_connected
                await clock.advance(0.2)
                await eventually(lambda: not conn.is_connected, what="keepalive timeout")
                assert downs == [None]
            # The broker answers again; the client reconnects after its backoff.
            await advance_until(clock, lambda: conn.is_connected, "reconnect")
            assert conn.stats.connects == 2
    assert any(r.getMessage().startswith("mqtt.keepalive_timeout") for r in caplog.records)
