"""Whatever the wire does (loss, duplication, reordering, corruption at
random rates, both ways) and however the application slices its writes,
the partner receives exactly the bytes that were sent, and no kernel
catch-all fires (the suite's autouse fixture checks that)."""

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from netinet.socket import MSG_WAITALL
from netinet.wire import Faults

from .support import payload, run
from .test_transfer import _client_send

rates = st.sampled_from([0.0, 0.01, 0.03, 0.06])


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(size=st.integers(1, 120_000), write=st.sampled_from([1, 100, 1448, 4088, 65536]),
       drop=rates, dup=rates, reorder=rates, corrupt=rates, seed=st.integers(0, 1000),
       quantum=st.booleans())
def test_any_faults_any_writes_same_bytes(size, write, drop, dup, reorder, corrupt, seed, quantum):
    data = payload(size, seed=seed)
    write = min(write, size) if write > 1 else max(1, size // 50)
    f_ab = Faults(drop=drop, duplicate=dup, reorder=reorder, corrupt=corrupt, seed=seed)
    f_ba = Faults(drop=drop, duplicate=dup, reorder=reorder, corrupt=corrupt, seed=seed + 1)
    with tempfile.TemporaryDirectory() as d:
        r = run(Path(d), _client_send(data, write_size=write), serve=lambda pt: pt.sink(5001),
                faults_ab=f_ab, faults_ba=f_ba,
                local_kw={"write_quantum": 4088} if quantum else None)
        assert r.result["connect"] == 0 and r.result["sent"] == size
        assert bytes(r.result["service"].data) == data


def _reader(chunk, flags):
    async def client(p, r, res):
        st = r.local.stack
        err, fd = await st.sys_socket(p)
        res["connect"] = await st.sys_connect(p, fd, ("10.0.0.2", 6000))
        buf, got = bytearray(chunk), bytearray()
        while True:
            err, n = await st.sys_recv(p, fd, buf, flags=flags)
            assert err == 0
            if n == 0:
                break
            got += buf[:n]
        res["got"] = bytes(got)
        await r.local.kernel.sys_close(p, fd)
    return client


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(size=st.integers(0, 120_000), chunk=st.sampled_from([7, 1448, 5000, 65536]),
       waitall=st.booleans(), drop=rates, dup=rates, reorder=rates, corrupt=rates,
       seed=st.integers(0, 1000))
def test_receive_direction_any_faults_any_reads_same_bytes(size, chunk, waitall, drop, dup,
                                                           reorder, corrupt, seed):
    data = payload(size, seed=seed)
    f_ab = Faults(drop=drop, duplicate=dup, reorder=reorder, corrupt=corrupt, seed=seed)
    f_ba = Faults(drop=drop, duplicate=dup, reorder=reorder, corrupt=corrupt, seed=seed + 1)
    with tempfile.TemporaryDirectory() as d:
        r = run(Path(d), _reader(chunk, MSG_WAITALL if waitall else 0),
                serve=lambda pt: pt.source(6000, data, write_size=3000),
                faults_ab=f_ab, faults_ba=f_ba)
        assert r.result["connect"] == 0 and r.result["got"] == data
