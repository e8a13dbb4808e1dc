"""The built-in SMSC simulator (SPEC R-6.5): SMPP, CIMD2 and a control port around one core.

`Simulator` starts the SMPP server, the CIMD2 server (when that module is present) and the JSON-lines
control port, all sharing one `SimulatorCore`, so that a fresh install can send a mail and see the
SMS in the simulator's log without an operator contract.
"""

from __future__ import annotations

import importlib
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from smsc.simulator.control import ControlServer
from smsc.simulator.core import SimSession, SimulatorCore, SubmittedSms, SubmitVerdict
from smsc.simulator.limits import setting
from smsc.simulator.portfile import port_file, remove_port, write_port
from smsc.simulator.smpp_server import SmppServer
from smsc.tls import server_context

if TYPE_CHECKING:
    from smsc.settings import SimulatorSettings

__all__ = ["SimSession", "Simulator", "SimulatorCore", "SubmitVerdict", "SubmittedSms", "listener_tls"]

log = structlog.get_logger(__name__)


def listener_tls(cfg: object, base_dir: Path | None = None) -> ssl.SSLContext | None:
    """The SMPP and CIMD2 ports' TLS context when the settings give `tls_cert_file` and `tls_key_file`
    (and `tls_client_ca_file`: a client certificate is then required), relative paths under
    `base_dir`; None: they speak in clear. Raises `smsc.tls.TlsFileError` naming the file."""
    cert, key = getattr(cfg, "tls_cert_file", None), getattr(cfg, "tls_key_file", None)
    if cert is None or key is None:
        return None
    client_ca = getattr(cfg, "tls_client_ca_file", None)

    def where(p: Path) -> Path:
        return p if base_dir is None or p.is_absolute() else base_dir / p

    return server_context(where(Path(cert)), where(Path(key)), where(Path(client_ca)) if client_ca else None)


class Simulator:
    def __init__(
        self, cfg: SimulatorSettings, log_path: Path, *, region: str = "PL", base_dir: Path | None = None
    ) -> None:
        self.cfg = cfg
        self.core = SimulatorCore(cfg, log_path, region=region)
        delay = setting(cfg, "response_delay_seconds", 0.0)  # error injection (`limits`): off by default
        self.tls = listener_tls(cfg, base_dir)
        self.smpp = SmppServer(self.core, cfg.host, cfg.smpp_port, response_delay=delay)
        self.smpp.tls = self.tls
        self.control = ControlServer(self.core, cfg.host, cfg.control_port)
        self._cimd2: Any = None  # what start_cimd2_server returns: an asyncio.Server-like handle
        self.smpp_port = cfg.smpp_port
        self.control_port = cfg.control_port
        self.cimd2_port: int | None = None
        self.binding = "smpp_port"  # the setting whose port `start` is binding (names a failure)
        self.port_file = port_file(log_path) if not cfg.control_port else None

    async def start(self) -> None:
        await self.core.resume()  # before any bind: the first login gets what an earlier run owed
        self.binding = "smpp_port"
        await self.smpp.start()
        self.smpp_port = self.smpp.port
        try:
            self.binding = "control_port"
            await self.control.start()
            self.control_port = self.control.port
            try:
                cimd2 = importlib.import_module("smsc.simulator.cimd2_server")
            except ModuleNotFoundError as exc:
                if exc.name != "smsc.simulator.cimd2_server":
                    raise
                log.info("sim.cimd2_unavailable")
            else:
                self.binding = "cimd2_port"
                self._cimd2 = await cimd2.start_cimd2_server(
                    self.core, self.cfg.host, self.cfg.cimd2_port, tls=self.tls
                )
                self.cimd2_port = self._cimd2.sockets[0].getsockname()[1]
            if self.port_file is not None:
                write_port(self.port_file, self.control_port)
        except BaseException:
            await self.stop()
            raise
        log.info(
            "sim.started",
            smpp_port=self.smpp_port,
            cimd2_port=self.cimd2_port,
            control_port=self.control_port,
            tls=self.tls is not None,
        )

    async def stop(self) -> None:
        if self.port_file is not None:
            remove_port(self.port_file)
        if self._cimd2 is not None:
            await self._cimd2.stop()  # clients are let go as the protocol asks, their handlers awaited
            self._cimd2 = None
        await self.control.stop()
        await self.smpp.stop()
        await self.core.close()
