"""cocotb side of the Verilator known-answer run of the transform engine
(driven by ``test_crypto_verilator.py``; not named ``test_*`` so that pytest
does not collect it).

The requests, their input words and the expected answers come from a JSON
file named by ``$KAT_CASES`` (written by the pytest side, which reads the
NIST/RFC files); a summary (cycles, wall time, failures) goes to
``$KAT_REPORT``. All requests of all files go through one engine in one run.

The four streams are driven as :func:`hw.crypto.harness.run_engine` drives
them without stalls: one command at a time, the next only after the result
of the previous one has been taken; input words back to back across
requests, each held until taken; ``o.ready`` and ``result.ready`` always
high. The bench (``engine_tb``) adds no logic; it only
gathers the four handshake flags into one word ``tb_flags`` so that a cycle
costs one read. Inputs are written after a falling edge and the flags read
there: with the two readys constant, ``cmd.ready``, ``i.ready``, ``o.valid``
and ``result.valid`` depend on registers only, so what is read at the
falling edge is what the next rising edge samples. When no stream can move,
the loop sleeps until one of the flags changes instead of waking every
cycle.
"""

import json
import os
import time

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import FallingEdge, ValueChange

PERIOD_NS = 30


def _check(req, got):
    """List of mismatch descriptions of one request (empty when right)."""
    bad = []
    if got["status"] != req["status"]:
        bad.append(f"status {got['status']:#x} != {req['status']:#x}")
    if req["out"] is not None and got["out"] != req["out"]:
        bad.append(f"out {got['out']} != {req['out']}")
    if got["mac"] != int(req["mac"], 16):
        bad.append(f"mac {got['mac']:x} != {req['mac']}")
    if got["iv"] != int(req["iv"], 16):
        bad.append(f"iv {got['iv']:x} != {req['iv']}")
    return bad


@cocotb.test()
async def engine_kat(dut):
    with open(os.environ["KAT_CASES"]) as f:
        suite = json.load(f)
    reqs = suite["requests"]
    lay = suite["result_layout"]       # field -> (offset, width)
    n = len(reqs)
    cmds = [int(r["cmd"], 16) for r in reqs]
    words = [w for r in reqs for w in r["words"]]
    expect_out = [r["out"] is not None and r["words"] != [] for r in reqs]

    h_flags = dut.tb_flags._handle
    h_opay = dut.o__payload._handle
    h_rpay = dut.result__payload._handle
    cmd_valid, cmd_payload = dut.cmd__valid, dut.cmd__payload
    i_valid, i_payload = dut.i__valid, dut.i__payload

    Clock(dut.clk, PERIOD_NS, unit="ns", impl="gpi").start()
    dut.rst.value = 1
    dut.o__ready.value = 1
    dut.result__ready.value = 1
    fall = FallingEdge(dut.clk)
    await fall
    await fall
    dut.rst.value = 0
    await fall

    got = [dict(out=bytearray()) for _ in range(n)]
    nxt_cmd = 0            # next command to present
    outstanding = False    # a command taken, its result not yet
    presenting = False     # cmd.valid is high
    wi = 0                 # next input word (index into `words`)
    shown = -1             # word index currently on i.payload (-1: valid low)
    oreq = 0               # request whose output words are arriving
    while oreq < n and not expect_out[oreq]:
        oreq += 1
    nres = 0
    wakeups = 0
    flag_change = ValueChange(dut.tb_flags)
    t0, cpu0 = time.perf_counter(), time.process_time()
    ns0 = get_sim_time("ns")
    while nres < n:
        flags = h_flags.get_signal_val_long()
        cmd_ready, i_ready = flags & 1, flags >> 1 & 1
        o_valid, r_valid = flags >> 2 & 1, flags >> 3 & 1
        moved = False
        # command stream
        if not outstanding and nxt_cmd < n:
            if not presenting:
                cmd_payload.value = cmds[nxt_cmd]
                cmd_valid.value = 1
                presenting = True
            if cmd_ready:          # taken at the coming edge
                outstanding = True
                nxt_cmd += 1
                moved = True
        elif presenting:
            cmd_valid.value = 0
            presenting = False
        # input stream
        if wi < len(words):
            if shown != wi:
                i_payload.value = words[wi]
                if shown < 0:
                    i_valid.value = 1
                shown = wi
            if i_ready:
                wi += 1
                moved = True
        elif shown >= 0:
            i_valid.value = 0
            shown = -1
        # output stream
        if o_valid:
            v = int(h_opay.get_signal_val_binstr(), 2)
            be = v >> 32 & 0xF
            out = got[oreq]["out"] if oreq < n else bytearray()
            for lane in range(4):
                if be >> lane & 1:
                    out.append(v >> (8 * lane) & 0xFF)
            if v >> 36 & 1:
                oreq += 1
                while oreq < n and not expect_out[oreq]:
                    oreq += 1
            moved = True
        # result stream
        if r_valid:
            v = int(h_rpay.get_signal_val_binstr(), 2)
            g = got[nres]
            for name, (off, width) in lay.items():
                g[name] = v >> off & ((1 << width) - 1)
            nres += 1
            outstanding = False
            moved = True
        if moved or (not outstanding and nxt_cmd < n and not presenting):
            await fall
        else:
            # Nothing moves until a flag changes (at a rising edge); then act
            # at the following falling edge.
            await flag_change
            await fall
            wakeups += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    cycles = round((get_sim_time("ns") - ns0) / PERIOD_NS)

    failures = []
    for r, g in zip(reqs, got):
        g["out"] = bytes(g["out"]).hex() if r["out"] is not None else None
        bad = _check(r, g)
        if bad:
            failures.append(f"{r['label']}: " + "; ".join(bad))
    report = dict(requests=n, words=len(words), cycles=cycles, wall_s=wall, cpu_s=cpu,
                  cycles_per_s=cycles / wall if wall else 0.0, idle_waits=wakeups,
                  failures=len(failures))
    if os.environ.get("KAT_REPORT"):
        with open(os.environ["KAT_REPORT"], "w") as f:
            json.dump(report, f)
    dut._log.info("KAT report: %s", report)
    assert not failures, (f"{len(failures)} of {n} requests wrong:\n  "
                          + "\n  ".join(failures[:20]))
