"""[overload] settings: when the node sheds new calls to keep the calls it has (RFC 6357).

The node samples its own load every ``interval`` seconds and decides every
``window`` seconds (``core.overload``, docs in the README "Overload"): a
new SIP INVITE, REGISTER (not a refresh) or SUBSCRIBE it sheds is answered
``503 Service Unavailable`` with ``Retry-After`` before any digest check or
routing; an SCCP phone that dials gets reorder. Established calls,
registration refreshes, OPTIONS and every in-dialog request always go on.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from offhook.config_base import Section


class OverloadSettings(Section):
    """[overload] ``enabled``: shed new calls when the node is saturated (off: never).

    Signals (each: overloaded at ``*_high`` and above, calm again below
    ``*_low``; between them the node keeps shedding what it sheds):

    - ``cpu_high`` / ``cpu_low``: the event loop thread's share of one CPU
      core over the window (0.9 / 0.7): one node is one loop on one core,
      and above about 90 % its queues (the sockets' buffers) grow and latency
      with them; 0 turns it off. ``cpu_counts_waiting`` (off): count the time
      the thread waited, runnable, for a CPU as busy too (Linux schedstat),
      for a node that must not fall behind when its machine is busy with
      other work; on a machine shared with other busy processes it sheds
      calls whenever they hold the CPUs, whatever the node's own load;
    - ``lag_high`` / ``lag_low``: seconds the loop's timer wakes late on
      average over the window (0.1 / 0.02): the loop cannot keep up, or the
      machine gives it too little CPU; 0 turns it off;
    - ``queue_high`` / ``queue_low``: the fullest receive buffer of the SIP
      UDP sockets, as a share of its size, over the window (0.01 / 0.0025:
      the buffers are 4 MiB, 8 MiB of kernel memory, so 0.01 is about 35
      INVITEs waiting, some 12 ms of work): datagrams arrive faster than the
      node reads them. The other two miss it: the CPU share of a saturated
      loop cannot go past one core (a load of 1.1 at most, a slow cut) and
      stays under ``cpu_high`` when the machine gives the node less than a
      core, and the loop, reading 32 datagrams a turn, keeps waking on time
      while the backlog waits in the kernel; queued work is what makes
      clients retransmit (after 500 ms) and give up. A sample at four times
      ``queue_high`` overloads the node at once (``core.overload.URGENT``).
      0 turns it off. Linux only (``SO_MEMINFO``; elsewhere it reads nothing);
    - ``pending_high`` / ``pending_low``: new calls not yet answered (INVITE
      transactions in progress, including ringing ones); 0 (default): off,
      since a busy site may ring many phones at once; set it to bound the
      calls in setup.

    The throttle: ``interval`` seconds between samples (0.1), ``window``
    seconds per decision (0.25); shedding starts after ``sustain`` overloaded
    windows in a row (2: a one-window spike, a garbage collection or a plan
    reload, sheds nothing); then an overloaded window multiplies the admitted
    share of new calls by at most ``decrease`` (0.75), a calm one adds
    ``increase`` (0.1), so the node recovers from full shedding in about
    ``window / increase`` = 2.5 s of calm; ``min_admit``: the share always
    admitted (0).
    ``retry_after_min`` / ``retry_after_max``: the Retry-After of a 503,
    seconds, from shedding little to shedding everything (1 / 8): short, as a
    proxy that honours it sends this node nothing for that long (RFC 3261
    §21.5.4). ``exempt``: numbers never shed (emergency calls, RFC 6357 §4).

    ``test_control``: the control op ``overload_test_load`` injects a load
    figure (tests and demonstrations only; off in production).
    """

    enabled: bool = True
    cpu_high: float = Field(default=0.9, ge=0, le=1)
    cpu_low: float = Field(default=0.7, ge=0, le=1)
    cpu_counts_waiting: bool = False
    lag_high: float = Field(default=0.1, ge=0, le=60)
    lag_low: float = Field(default=0.02, ge=0, le=60)
    queue_high: float = Field(default=0.01, ge=0, le=1)
    queue_low: float = Field(default=0.0025, ge=0, le=1)
    pending_high: int = Field(default=0, ge=0, le=1_000_000)
    pending_low: int = Field(default=0, ge=0, le=1_000_000)
    interval: float = Field(default=0.1, ge=0.01, le=10)
    window: float = Field(default=0.25, ge=0.05, le=60)
    sustain: int = Field(default=2, ge=1, le=100)
    decrease: float = Field(default=0.75, gt=0, lt=1)
    increase: float = Field(default=0.1, gt=0, le=1)
    min_admit: float = Field(default=0.0, ge=0, le=1)
    retry_after_min: int = Field(default=1, ge=0, le=3600)
    retry_after_max: int = Field(default=8, ge=0, le=3600)
    exempt: list[str] = Field(default_factory=lambda: ["112", "911"], max_length=64)
    test_control: bool = False

    @model_validator(mode="after")
    def _pairs(self) -> OverloadSettings:
        for name in ("cpu", "lag", "queue", "pending"):
            high, low = getattr(self, f"{name}_high"), getattr(self, f"{name}_low")
            if high and low > high:
                raise ValueError(f"{name}_low ({low}) must be <= {name}_high ({high})")
        if self.retry_after_min > self.retry_after_max:
            raise ValueError(
                f"retry_after_min ({self.retry_after_min}) must be <= "
                f"retry_after_max ({self.retry_after_max})"
            )
        if self.window < self.interval:
            raise ValueError(f"window ({self.window}) must be >= interval ({self.interval})")
        return self
